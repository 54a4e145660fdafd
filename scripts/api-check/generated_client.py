"""generated_client.py — a short script through a Python client generated from the server's
own /openapi.json by openapi-python-client: create a job, run it with wait and read its stdout,
run it without wait and find the queued answer, list executions, and get a typed 404 and 422.
Every step asserts what it got, so a document a generator misreads fails here.

Usage: python generated_client.py PACKAGE_PARENT_DIR BASE_URL TOKEN
(the generated package is `confine_client` inside PACKAGE_PARENT_DIR)."""
import sys
import uuid

sys.path.insert(0, sys.argv[1])
base_url, token = sys.argv[2], sys.argv[3]

from confine_client import AuthenticatedClient  # noqa: E402
from confine_client.api.executions import get_execution, list_executions, run_job  # noqa: E402
from confine_client.api.jobs import create_job  # noqa: E402
from confine_client.models import (  # noqa: E402
    ExecutionPage, ExecutionStatus, Job, JobCreate, Problem, RunAccepted, RunExecution, RunRequest, Verdict,
)

client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
name = f"generated-client-{uuid.uuid4().hex[:8]}"

job = create_job.sync(client=client, body=JobCreate(name=name, script_type="python", script_content="print(input().upper())"))
assert isinstance(job, Job), f"create_job answered {job!r}"
assert job.name == name

# wait in the body, no query parameter: the generated call sends no wait=false over it.
finished = run_job.sync(job.id, client=client, body=RunRequest(stdin="hello from the generated client\n", wait=True, wait_timeout=60))
assert isinstance(finished, RunExecution), f"a waited run came back as {type(finished).__name__}: {finished!r}"
assert finished.status == ExecutionStatus.SUCCESS, f"status {finished.status}, reason {finished.reason}"
assert finished.verdict == Verdict.EXITED, f"verdict {finished.verdict!r}"
assert finished.stdout == "HELLO FROM THE GENERATED CLIENT\n", repr(finished.stdout)

# wait as a query parameter works too.
waited = run_job.sync(job.id, client=client, body=RunRequest(stdin="query\n"), wait=True)
assert isinstance(waited, RunExecution) and waited.stdout == "QUERY\n", repr(waited)

queued = run_job.sync(job.id, client=client, body=RunRequest(stdin="later\n"))
assert isinstance(queued, RunAccepted), f"a queued run came back as {type(queued).__name__}"
assert queued.status == ExecutionStatus.PENDING

page = list_executions.sync(client=client, job_id=job.id, limit=10)
assert isinstance(page, ExecutionPage), f"list_executions answered {page!r}"
ids = [item.id for item in page.executions]
assert finished.id in ids and queued.execution_id in ids, f"{ids} lacks {finished.id} or {queued.execution_id}"

missing = get_execution.sync(999_999_999, client=client)
assert isinstance(missing, Problem) and missing.status == 404, f"an unknown execution answered {missing!r}"
assert "999999999" in missing.detail, missing.detail

refused = create_job.sync(client=client, body=JobCreate(name=name + "-bad", script_type="python", script_content="pass",
                                                        policy="no-such-policy"))
assert isinstance(refused, Problem) and refused.status == 422, f"a bad policy answered {refused!r}"
assert refused.field == "policy", f"the 422 names {refused.field!r}, not policy"

print(f"generated client: job {job.id}, waited execution {finished.id} read its stdout, queued {queued.execution_id}, "
      f"{len(ids)} listed, typed 404 and 422")
