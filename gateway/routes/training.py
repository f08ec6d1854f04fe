"""Training jobs and registered agents under /v1/training (starting and cancelling a job are
the generic command routes ``POST /v1/cmd/training/{job_id}/start`` and ``.../cancel``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import PathParameter, QueryParameter

from actors.training import queries
from gateway.app import Services
from gateway.problems import ProblemError, not_found
from schemas.base import KEY_PATTERN
from schemas.training import JobStatus

TAGS = ["training"]
READ = "training.read"

JobPath = Annotated[str, PathParameter(pattern=KEY_PATTERN, description="The job id.")]
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many jobs.")]
StatusFilter = Annotated[JobStatus | None, QueryParameter(description="Only jobs in this status.")]
LadderFilter = Annotated[
    str | None,
    QueryParameter(pattern=KEY_PATTERN, description="Only agents on this ladder."),
]


def routes(services: Services) -> list[HTTPRouteHandler]:
    """The training read routes (mounted at /v1 by the gateway)."""

    def engine() -> Any:
        return services.read_engine or services.engine

    async def allowed(request: Request[Any, Any, Any]) -> None:
        caller = await services.caller(request)
        services.authorize_action(caller.principal, READ)

    @get(
        "/training/jobs",
        tags=TAGS,
        summary="List training jobs",
        description="Jobs newest first, each with its status and latest metrics.",
    )
    async def list_jobs(
        request: Request[Any, Any, Any], status: StatusFilter = None, limit: Limit = 100
    ) -> list[queries.JobRow]:
        await allowed(request)
        return await queries.list_jobs(engine(), status=status, limit=limit)

    @get("/training/jobs/{job_id:str}", tags=TAGS, summary="A training job")
    async def read_job(request: Request[Any, Any, Any], job_id: JobPath) -> queries.JobRow:
        await allowed(request)
        job = await queries.get_job(engine(), job_id)
        if job is None:
            raise ProblemError(not_found(f"no training job {job_id!r}", code="job_not_found"))
        return job

    @get(
        "/training/agents",
        tags=TAGS,
        summary="Registered agents",
        description="Trained agents that matches and the ladder can use, best first.",
    )
    async def list_agents(
        request: Request[Any, Any, Any], ladder: LadderFilter = None
    ) -> list[queries.AgentRow]:
        await allowed(request)
        return await queries.list_agents(engine(), ladder=ladder)

    return [list_jobs, read_job, list_agents]
