"""titiler's COG tiler as a user would deploy it: ``uvicorn titiler_app:app`` (bench T1, T3, T4).

Runs in the baseline virtualenv (``.venv-bench``), not Terracube's; tiles are at
``/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url=<COG>&rescale=<min>,<max>``.
"""

from fastapi import FastAPI
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from titiler.core.factory import TilerFactory

app = FastAPI(title="titiler (bench baseline)")
app.include_router(TilerFactory().router, prefix="/cog")
add_exception_handlers(app, DEFAULT_STATUS_CODES)  # e.g. a tile outside the COG: 404, as deployed
