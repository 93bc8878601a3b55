"""The contract between the Airflow side (``step_patterns``) and the Lambdas (``step_lambdas``).

Standard library only: the plugin, its ASL builders and every Lambda import it, and nothing
else is imported by it.

- :mod:`.events`: each Lambda's event as a dataclass (``from_event``/``to_event``);
- :mod:`.layout`: where a run keeps its objects in S3;
- :mod:`.results`: what a chunk syncer reports per segment (read by the report and by progress);
- :mod:`.defaults`: function names and prefixes;
- :mod:`.rate`: ``N/Ws`` rates and a syncer's share of one;
- :mod:`.checks`: the value checks (parse time, execute time, event time);
- :mod:`.error_text`: Step Functions errors as a person reads them.
"""
