"""/v1/models: the model names runs can use, as OpenAI's Models API lists them (no Assistants beta header).

The names are those configured by name (LLM_BACKENDS, LLM_MODEL_MAP, LLM_DEFAULT_MODEL: see shared/backends.py).
A run may still name any other model: it goes to the default backend, which passes the name through."""

from typing import Any

from fastapi import APIRouter

from api.deps import ProjectDep
from api.errors import APIError
from shared import backends

router = APIRouter(tags=["models"])


def render(route: backends.Route) -> dict[str, Any]:
    # `created` is when OpenAI made the model; a route has no such date.
    return {"id": route.name, "object": "model", "created": 0, "owned_by": route.owned_by}


@router.get("/models")
async def list_models(_: ProjectDep) -> dict[str, Any]:
    return {"object": "list", "data": [render(r) for r in backends.listed()]}


@router.get("/models/{model:path}")
async def retrieve_model(model: str, _: ProjectDep) -> dict[str, Any]:
    route = backends.routes().get(model)
    if route is None:
        raise APIError(404, f"The model '{model}' does not exist", param="model", code="model_not_found")
    return render(route)
