"""The worker's decisions about a job's container, driven by an in-memory runtime: how a run
ends (succeeded, failed with its cause, out of memory, timed out, cancelled), warm containers
handed their job or replaced, and how bots' and jobs' containers are built and measured alike.
The same paths against the real engine: tests/integration/test_job_sandbox.py,
test_warm_containers.py, test_reconciler.py."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel

from fta.jobs.models import JobKind, JobStatus
from fta.runtime import ContainerSpec, JobRunner, Limits, Mount, TenantNetwork, Usage
from fta.runtime.spec import PYTHON_ENV_TARGET, OwnerKind
from fta.settings import Settings
from fta.worker.containers import UsageSampler, container_spec
from fta.worker.handlers import job_ending
from fta.worker.log_capture import (
    TRUNCATION_NOTICE,
    LogCapture,
    crash_cause,
    exit_error,
    output_capture,
)
from fta.worker.sandbox import Outcome as RunOutcome
from fta.worker.sandbox import RunReport, run_container
from fta.worker.warm_pool import WarmPool
from tests.support.fake_runtime import FAKE_IMAGE_ID, KILLED, FakeRuntime, Outcome

MIB = 1024 * 1024
LIMITS = Limits(nano_cpus=1_000_000_000, memory_bytes=512 * MIB, pids=256, tmpfs_bytes=64 * MIB)
SETTINGS = Settings.model_construct(job_image="fta/freqtrade:test")
NETWORK = TenantNetwork("fta-client-t1", "10.211.0.0/24", "10.211.0.2", "10.211.0.3")
SUMMARY = {
    "kind": "download-data",
    "exchange": "binance",
    "timeframe": "5m",
    "timerange": "20260101-20260102",
    "data": {"sha256": "0" * 64, "startup_candles": 0, "pairs": []},
}
RESULT_LINE = "FTA-RESULT:" + json.dumps(SUMMARY)


def _spec(runtime: JobRunner, owner_id: str = "job-1", kind: OwnerKind = "job") -> ContainerSpec:
    return container_spec(
        runtime,
        SETTINGS,
        tenant_id="t1",
        owner_kind=kind,
        owner_id=owner_id,
        bundle_env={"FTA_BUNDLE_0": owner_id},
        network=NETWORK,
        mounts=[Mount("fta-data-t1", "/freqtrade/user_data", read_only=False)],
        limits=LIMITS,
    )


class Job:
    """One job's run through `run_container`, with what the worker's callbacks saw."""

    def __init__(self, runtime: FakeRuntime, *, cancel_after: int | None = None) -> None:
        self.runtime = runtime
        self.started: list[str] = []
        self.samples: list[Usage] = []
        self.cancel_after = cancel_after
        self.cancel_checks = 0
        self.capture = output_capture(SETTINGS)

    def _cancel_requested(self) -> bool:
        self.cancel_checks += 1
        return self.cancel_after is not None and self.cancel_checks > self.cancel_after

    def run(self, *, max_seconds: int = 30, warm_id: str | None = None) -> RunReport:
        return run_container(
            self.runtime,
            _spec(self.runtime),
            self.capture,
            max_seconds=max_seconds,
            on_started=self.started.append,
            on_output=lambda: None,
            cancel_requested=self._cancel_requested,
            on_sample=self.samples.append,
            warm_id=warm_id,
        )

    def ending(self, report: RunReport) -> tuple[JobStatus, str | None, BaseModel | None]:
        return job_ending(
            report,
            self.capture,
            kind=JobKind.DOWNLOAD_DATA,
            max_seconds=30,
            memory_bytes=LIMITS.memory_bytes,
            result_max_bytes=SETTINGS.job_result_max_bytes,
        )


def test_a_job_that_exits_0_with_its_result_line_succeeded() -> None:
    runtime = FakeRuntime()
    runtime.script(Outcome(exit_code=0, lines=("downloading", RESULT_LINE), seconds=0.05))
    job = Job(runtime)
    report = job.run()
    status, error, summary = job.ending(report)
    assert (status, error) == (JobStatus.SUCCEEDED, None)
    assert summary is not None and summary.model_dump(mode="json") == SUMMARY
    assert report.outcome is RunOutcome.EXITED and report.exit_code == 0
    # Created from a spec pinned to the image and its Python environment, then removed.
    (container_id,) = runtime.called("create")
    assert job.started == [container_id] and runtime.removed == [container_id]
    assert report.cpu_seconds == Decimal("1.25") and report.memory_max_bytes == 64 * MIB
    assert job.samples and job.samples[0] == Usage(1.25, 64 * MIB)
    # The result line is set aside, never kept as log text.
    assert "FTA-RESULT" not in job.capture.take_pending()


def test_a_job_that_exits_0_without_a_valid_result_failed() -> None:
    runtime = FakeRuntime()
    runtime.script(Outcome(exit_code=0, lines=("FTA-RESULT:{not json",)))
    job = Job(runtime)
    status, error, _ = job.ending(job.run())
    assert (status, error) == (JobStatus.FAILED, "the job produced no valid result summary")


def test_a_job_that_exits_1_failed_with_its_cause_line() -> None:
    runtime = FakeRuntime()
    runtime.script(
        Outcome(
            exit_code=1,
            lines=(
                "loading strategy",
                "ERROR - Impossible to load Strategy 'Broken'",
                "shutting down",
            ),
        )
    )
    job = Job(runtime)
    status, error, summary = job.ending(job.run())
    assert status is JobStatus.FAILED and summary is None
    assert error == "freqtrade exited with code 1: ERROR - Impossible to load Strategy 'Broken'"


def test_the_entrys_own_error_line_is_the_cause() -> None:
    lines = ["ERROR - something earlier", "FTA-ERROR: strategy X failed to import", "bye"]
    assert crash_cause(lines) == "strategy X failed to import"
    assert exit_error(2, lines) == "freqtrade exited with code 2: strategy X failed to import"
    assert exit_error(3, []) == "freqtrade exited with code 3: no output"
    assert crash_cause(["a", "b"]) == "b"


def test_a_job_killed_for_its_memory_is_oom_killed_at_the_plans_limit() -> None:
    runtime = FakeRuntime()
    runtime.script(Outcome(oom=True, usage=Usage(3.0, 100 * MIB), seconds=0.05))
    job = Job(runtime)
    report = job.run()
    status, error, _ = job.ending(report)
    assert report.outcome is RunOutcome.OOM_KILLED
    assert status is JobStatus.OOM_KILLED
    assert error == "killed: memory use exceeded the plan's limit of 512 MiB"
    # Its peak is the limit it reached, whatever the last sample said.
    assert report.memory_max_bytes == LIMITS.memory_bytes


def test_a_job_past_its_time_is_killed_and_timed_out() -> None:
    runtime = FakeRuntime()
    runtime.script(Outcome(seconds=math.inf))
    job = Job(runtime)
    report = job.run(max_seconds=1)
    status, error, _ = job.ending(report)
    assert report.outcome is RunOutcome.TIMED_OUT and report.exit_code == KILLED
    assert status is JobStatus.TIMED_OUT
    assert error == "stopped after its maximum duration of 30 s"
    (container_id,) = runtime.called("create")
    assert runtime.called("kill") == [container_id] and runtime.removed == [container_id]


def test_a_cancelled_job_is_killed_and_cancelled() -> None:
    runtime = FakeRuntime()
    runtime.script(Outcome(seconds=math.inf))
    job = Job(runtime, cancel_after=1)
    report = job.run()
    status, error, _ = job.ending(report)
    assert report.outcome is RunOutcome.CANCELLED
    assert (status, error) == (JobStatus.CANCELLED, "cancelled at the client's request")
    assert runtime.called("kill") == runtime.called("create")


def _pool(runtime: FakeRuntime) -> WarmPool:
    return WarmPool(
        runtime,
        capacity=2,
        idle_seconds=600,
        tenant_cpu=lambda _: Decimal("7"),
        now=lambda: datetime(2026, 12, 6, tzinfo=UTC),
    )


def test_a_warm_container_is_handed_the_job() -> None:
    runtime = FakeRuntime()
    pool = _pool(runtime)
    pool.prepare(_spec(runtime))
    (warm_id,) = runtime.called("create")
    assert runtime.containers[warm_id].spec.handoff
    runtime.script(Outcome(lines=(RESULT_LINE,)))
    job = Job(runtime)
    warm = pool.take(_spec(runtime, "job-2"))
    assert warm is not None and warm.container_id == warm_id
    report = job.run(warm_id=warm.container_id)
    pool.release(warm.container_id)
    assert job.ending(report)[0] is JobStatus.SUCCEEDED
    # No container of its own: the warm one ran it, with the job's bundle, and went.
    assert runtime.called("create") == [warm_id]
    assert runtime.called("hand_off") == [warm_id] and job.started == [warm_id]
    assert runtime.removed == [warm_id] and pool.held() == frozenset()


def test_a_failed_hand_off_falls_back_to_a_new_container() -> None:
    runtime = FakeRuntime()
    pool = _pool(runtime)
    pool.prepare(_spec(runtime))
    (warm_id,) = runtime.called("create")
    runtime.refuse_hand_offs = 1
    runtime.script(Outcome(lines=(RESULT_LINE,)))
    job = Job(runtime)
    warm = pool.take(_spec(runtime, "job-2"))
    assert warm is not None
    report = job.run(warm_id=warm.container_id)
    pool.release(warm.container_id)
    assert job.ending(report)[0] is JobStatus.SUCCEEDED
    warm_id, own_id = runtime.called("create")
    assert report.container_id == own_id and job.started == [own_id]
    assert set(runtime.removed) == {warm_id, own_id} and not runtime.containers


def test_no_warm_container_for_another_shape() -> None:
    runtime = FakeRuntime()
    pool = _pool(runtime)
    pool.prepare(_spec(runtime))
    assert pool.take(_spec(runtime, "bot-1", kind="bot")) is None


def test_jobs_and_bots_get_the_same_pinned_spec() -> None:
    runtime = FakeRuntime()
    job, bot = _spec(runtime, "job-1"), _spec(runtime, "bot-1", kind="bot")
    for spec in (job, bot):
        assert spec.image == "fta/freqtrade:test" and spec.image_id == FAKE_IMAGE_ID
        assert spec.mounts[-1].target == PYTHON_ENV_TARGET and spec.mounts[-1].read_only
        assert spec.network == NETWORK.name and spec.dns == [NETWORK.dns_ip]
        assert spec.limits == LIMITS
    assert runtime.called("with_python_env") == ["job-1", "bot-1"]


def test_the_usage_sampler_keeps_the_peaks_and_its_pace() -> None:
    runtime = FakeRuntime()
    now = [0.0]
    sampler = UsageSampler(runtime, 30.0, clock=lambda: now[0])
    runtime.script(Outcome(seconds=math.inf, usage=Usage(2.0, 10 * MIB)))
    container_id = runtime.create(_spec(runtime))
    runtime.start(container_id)
    assert sampler.due(container_id)
    assert sampler.read(container_id) == Usage(2.0, 10 * MIB)
    assert not sampler.due(container_id)
    now[0] = 30.0
    assert sampler.due(container_id)
    # Exited: the engine reads zero, the sampler keeps what it saw; gone: the same.
    runtime.kill(container_id)
    assert sampler.read(container_id) == Usage(2.0, 10 * MIB)
    runtime.remove(container_id)
    assert sampler.read(container_id) == Usage(2.0, 10 * MIB)
    sampler.forget(container_id)
    assert sampler.read(container_id) is None


@pytest.mark.parametrize("capped", [True, False])
def test_one_capture_for_jobs_and_bots(capped: bool) -> None:
    settings = Settings.model_construct(job_log_max_line=20, job_log_max_bytes=50)
    capture: LogCapture = output_capture(settings, capped=capped)
    for index in range(10):
        capture.feed(f"line {index} token=secretsecretsecret")  # pragma: allowlist secret
    text = capture.take_pending()
    assert "secretsecretsecret" not in text
    lines = text.removesuffix(TRUNCATION_NOTICE).splitlines()
    assert all(len(line) <= 20 + len(" [fta: line cut]") for line in lines)
    # A job's output is capped in all; a bot's is not (its old chunks are pruned).
    assert capture.truncated is capped and text.endswith(TRUNCATION_NOTICE) is capped
    assert (len(lines) < 10) is capped
    assert capture.pending_chars == 0
