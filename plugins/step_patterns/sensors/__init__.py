from step_patterns.sensors.execution import StepFunctionsExecutionSensor

__all__ = ["StepFunctionsExecutionSensor"]
