from step_patterns.operators.wait_loop import WaitLoopOperator

__all__ = ["WaitLoopOperator"]
