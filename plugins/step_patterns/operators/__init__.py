from step_patterns.operators.chunked_iterator import ChunkedIteratorOperator
from step_patterns.operators.wait_loop import WaitLoopOperator

__all__ = ["ChunkedIteratorOperator", "WaitLoopOperator"]
