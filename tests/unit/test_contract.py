"""The contract between Airflow and the Lambdas (step_lambdas.contract): stdlib only, each rule
once, literal values checked at parse time and templated ones at execute time by the same check."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk import DAG

from step_lambdas.contract import checks, defaults
from step_lambdas.contract.events import ChunkSyncRequest, ExportRequest, InvalidChunkRequest, StatementSpec
from step_lambdas.contract.rate import RateShare, parse_rate
from step_lambdas.manifest import FUNCTIONS
from step_patterns.asl import ChunkedIteratorSettings, build_chunked_iterator
from step_patterns.operators import ChunkedIteratorOperator

CONTRACT = Path(__file__).resolve().parents[2] / "lambdas/step_lambdas/contract"
SYNC = dict(task_id="sync", sql="SELECT 1", database="dev", cluster_identifier="c", role_arn="r",
            bucket="b", pipedrive_secret_arn="arn:secret")


def test_the_contract_imports_nothing_but_the_standard_library():
    for path in CONTRACT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("step_lambdas.contract") or top == "__future__", (
                    f"{path.name} imports {name}")
    # and it imports, with every other package out of reach
    blocked = ("import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in {'boto3', 'botocore', 'airflow', 'requests', 'step_patterns'}:\n"
               "            raise ImportError('blocked: ' + name)\nsys.meta_path.insert(0, Block())\n"
               "import step_lambdas.contract.checks, step_lambdas.contract.events, step_lambdas.contract.layout\n"
               "import step_lambdas.contract.defaults, step_lambdas.contract.rate, step_lambdas.contract.error_text\n"
               "import step_lambdas.contract.results\n")
    subprocess.run([sys.executable, "-c", blocked], check=True, cwd=CONTRACT.parents[1])


def test_the_bundle_deploys_the_functions_the_contract_names():
    assert tuple(FUNCTIONS) == defaults.FUNCTION_KEYS
    assert defaults.function_name("report", "acme") == "acme-report"


@pytest.mark.parametrize("value", [20, 20.0, None, ["20/2s"]])
def test_a_rate_that_is_not_text_says_the_form_it_must_have(value):
    with pytest.raises(ValueError) as error:
        parse_rate(value)
    assert str(error.value) == f"rate must be text of the form N/Ws (N requests per W seconds), e.g. 20/2s or 80/2s, got {value!r}"


def test_a_rate_is_shared_between_syncers_and_travels_as_the_syncers_read_it():
    share = RateShare.split("80/2s", 4)
    assert share.to_event() == {"requests": 20, "per_seconds": 2.0}
    assert RateShare.from_event(share.to_event()) == share
    with pytest.raises(ValueError, match=r"^target.rate.requests must be an integer >= 1, got True$"):
        RateShare.from_event({"requests": True, "per_seconds": 2})


@pytest.mark.parametrize("check, args, message", [
    (checks.integer, ("n", True), "n must be an integer >= 1, got True"),
    (checks.integer, ("n", 11, 0, 10), "n must be an integer in [0, 10], got 11"),
    (checks.count, ("n", -1), "n must be a non-negative integer, got -1"),
    (checks.number, ("x", float("inf"), 1.0), "x must be a number >= 1, got inf"),
    (checks.execution_timeout, ("t", 31_536_001), "t must be an integer in [1, 31536000], got 31536001"),
    (checks.map_mode, ("m", "inline"), "m must be one of DISTRIBUTED, INLINE, got 'inline'"),
    (checks.field_mapping, ("f", '{"a": 1}'), "f must map column names to Deal field names (text to text), got '{\"a\": 1}'"),
])
def test_each_check_names_the_value_and_what_it_must_be(check, args, message):
    with pytest.raises(ValueError) as error:
        check(*args)
    assert str(error.value) == message


@pytest.mark.parametrize("rendered", ['{"company": "org_name"}', "{'company': 'org_name'}", {"company": "org_name"}])
def test_a_field_mapping_may_be_rendered_as_json_or_as_python_prints_a_dict(rendered):
    assert checks.field_mapping("field_mapping", rendered) == {"company": "org_name"}


def test_the_chunk_syncer_event_round_trips_and_the_builder_spells_its_fields_from_it():
    event = {"chunk": {"index": 3, "key": "p/chunks/000003.jsonl", "records": 10}, "cursor": 4,
             "target": {"external_id_field": "External ID", "pipedrive_secret_arn": "arn:s",
                        "pipedrive_base_url": "https://pd", "rate": {"requests": 20, "per_seconds": 2.0},
                        "concurrency": 8},
             "output": {"bucket": "b", "prefix": "p", "sync_state_prefix": "s"}, "execution_arn": "arn:e"}
    assert ChunkSyncRequest.from_event(event).to_event() == event
    with pytest.raises(InvalidChunkRequest, match=r"^chunk syncer input: cursor must be a non-negative integer, got -1$"):
        ChunkSyncRequest.from_event({**event, "cursor": -1})
    arns = {name: f"arn:aws:lambda:us-east-1:1:function:{name}" for name in
            ("query_executor_arn", "chunk_syncer_arn", "report_arn")}
    definition = build_chunked_iterator(ChunkedIteratorSettings(**arns)).to_dict()
    chunk_map = definition["States"]["SyncChunks"]
    payloads = [chunk_map["ItemSelector"], chunk_map["ItemProcessor"]["States"]["SyncChunk"]["Parameters"]["Payload"],
                chunk_map["ItemProcessor"]["States"]["ContinueChunk"]["Parameters"]]
    for payload in payloads:
        assert [key.removesuffix(".$") for key in payload] == list(ChunkSyncRequest.EVENT_FIELDS)


def test_the_statement_event_round_trips():
    spec = StatementSpec.from_event({"sql": "select :a", "database": "dev", "workgroup_name": "w",
                                     "parameters": {"a": True}})
    assert StatementSpec.from_event(spec.to_event()) == spec
    assert spec.to_event()["parameters"] == [{"name": "a", "value": "true"}]


# -- the operator: parse time for literals, execute time for templates, one check ------------

def operator(**kwargs) -> ChunkedIteratorOperator:
    with DAG("d", schedule=None):
        return ChunkedIteratorOperator(**{**SYNC, **kwargs})


def test_rate_20_is_refused_at_parse_time_with_the_form_it_must_have():
    with pytest.raises(ValueError) as error:
        operator(rate=20)
    assert str(error.value) == ("sync: rate must be text of the form N/Ws (N requests per W seconds), "
                                "e.g. 20/2s or 80/2s, got 20")


def test_templated_rate_and_field_mapping_parse_and_are_checked_once_rendered():
    sync = operator(rate="{{ var.value.rate }}", field_mapping="{{ var.json.mapping }}")
    # what Jinja renders them to (text), checked by execute before anything reaches AWS
    sync.rate, sync.field_mapping = "20", "{'company': 'org_name'}"
    with pytest.raises(ValueError) as error:
        sync.execute(context={})
    assert str(error.value) == "sync: rate '20' is not N/Ws (N requests per W seconds), e.g. 20/2s or 80/2s"
    sync.rate, sync.field_mapping = "40/2s", "[1, 2]"
    with pytest.raises(ValueError) as error:
        sync.execute(context={})
    assert str(error.value) == ("sync: field_mapping must map column names to Deal field names (text to text), "
                                "got '[1, 2]'")
    sync.field_mapping = "{'company': 'org_name'}"
    sync.check_values(rendered=True)
    target = sync.build_input({})["target"]
    assert target["rate"] == {"requests": 40, "per_seconds": 2.0}
    assert target["field_mapping"] == {"company": "org_name"}


def test_a_templated_value_of_a_field_that_is_not_templated_is_refused_at_parse_time():
    with pytest.raises(ValueError, match=r"^sync: concurrency must be an integer >= 1, got '\{\{ var.value.c \}\}'$"):
        operator(concurrency="{{ var.value.c }}")


def test_the_query_executor_reads_the_execution_input_the_operator_writes():
    sync = operator(rate="40/2s", max_concurrency=2, chunk_size=None, field_mapping={"lead_id": "external_id"})
    execution_input = sync.build_input({})
    request = ExportRequest.from_event(execution_input)
    assert request.rate == RateShare(20, 2.0) and request.field_mapping == {"lead_id": "external_id"}
    assert ExportRequest.from_event(request.to_event()) == request
    assert ChunkSyncRequest.from_event({"chunk": {"index": 0, "key": "k", "records": 1}, "cursor": 0,
                                        **{k: execution_input[k] for k in ("target", "output")}}).rate_requests == 20
