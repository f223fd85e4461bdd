"""The web service: POST /predict, GET /health, the page at /, OpenAPI at /openapi.json and /docs.

Everything is served from the package (the page, its script and style, the Swagger UI files of the
swagger-ui-py package when installed): no CDN, no network. The model is loaded once; requests are
batched together (service.batcher); nothing is written to disk. A malformed request, whatever its bytes
and headers, gets a 4xx answer, never a 5xx; a client that hangs up mid-request is one log line.
"""
from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from ..reports.html import ASSETS, result_document
from ..inference.writers import prediction_record
from ..tasks import OUTPUT_TASKS
from .batcher import Batcher
from .inputs import Limits, RequestProblem, check_limits, parse_request, query_flag, too_large

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
FASTA_EXAMPLE = ">P68871_HBB human hemoglobin subunit beta\nMVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENFRLLGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH\n"
PREDICT_BODY = {
    "required": True,
    "content": {
        "text/plain": {"schema": {"type": "string"}, "example": FASTA_EXAMPLE},
        "application/json": {
            "schema": {"oneOf": [
                {"type": "object", "properties": {"fasta": {"type": "string"}}, "required": ["fasta"]},
                {"type": "object", "properties": {"sequences": {"type": "object", "additionalProperties": {"type": "string"}}},
                 "required": ["sequences"]}]},
            "example": {"sequences": {"HBB": "MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLL"}},
        },
    },
}
PREDICT_ANSWERS = {
    200: {"description": "`tasks`: per task its labels, names as people write them and colours; `proteins`: per "
                         "protein id, description, sequence, the labels (ss3 and ss8 strings, one letter per "
                         "residue; location; membrane) and probabilities (per residue: L lists in label order; "
                         "per protein: label -> probability), as in predictions.jsonl"},
    413: {"description": "request body, number of sequences or residues over the server's limits"},
    422: {"description": "not FASTA or JSON of the accepted forms, or a bad record (the CLI's message)"},
}


def _problem(exc: RequestProblem) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


async def _read_body(request: Request, limits: Limits) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limits.max_bytes:
        raise too_large(int(declared), limits)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large(size, limits)
        chunks.append(chunk)
    return b"".join(chunks)


def _read_request(body: bytes, content_type: str | None, limits: Limits, allow_nucleotides: bool = False) -> list:
    """The request's records, or RequestProblem: every failure to read a client's body is the client's."""
    try:
        records = parse_request(body, content_type, allow_nucleotides)
    except RequestProblem:
        raise
    except RecursionError:
        raise RequestProblem(422, "invalid JSON: nested too deeply") from None
    except Exception as exc:  # a reader bug must not turn a bad body into a 500: answer, and log it
        log.warning("unreadable request body: %s: %s", type(exc).__name__, exc)
        raise RequestProblem(422, f"the request body could not be read ({type(exc).__name__})") from None
    check_limits(records, limits)
    return records


def create_app(predictor, limits: Limits = Limits(), batch_residues: int = 16384, wait_ms: float = 5.0,
               model_name: str = "default") -> FastAPI:
    """The ASGI app around a loaded Predictor."""
    # parse_request applied each request's own nucleotide choice; the batch mixes requests
    batcher = Batcher(lambda seqs: predictor.predict(seqs, tasks=OUTPUT_TASKS, allow_nucleotides=True),
                      batch_residues, wait_ms / 1000)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="dbmtl", summary="Secondary structure, subcellular location and membrane-bound vs soluble "
                                         "from the protein sequence alone", docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/assets", StaticFiles(directory=str(ASSETS)), name="assets")
    _mount_docs(app)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/health", summary="the server is up; model, limits and batching counts")
    async def health():
        return {"status": "ok", "model": model_name, "kind": predictor.kind, "limits": asdict(limits),
                "batching": {"budget_residues": batch_residues, "wait_ms": wait_ms, **asdict(batcher.stats)}}

    @app.post("/predict", summary="predict SS3, SS8, location and membrane for up to the limit of proteins",
              openapi_extra={"requestBody": PREDICT_BODY}, responses=PREDICT_ANSWERS)
    async def predict(request: Request):
        try:
            allow = query_flag(request.query_params.get("allow_nucleotides"), "allow_nucleotides")
            records = _read_request(await _read_body(request, limits), request.headers.get("content-type"), limits,
                                    allow)
        except RequestProblem as exc:
            return _problem(exc)
        except ClientDisconnect:
            client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
            log.warning("client %s hung up before sending the whole request", client)
            return Response(status_code=400)  # nobody reads it; it ends the request
        try:
            predictions = await batcher.submit([r.sequence for r in records])
        except Exception as exc:  # the model failed: say so, keep serving
            log.exception("prediction failed")
            return JSONResponse({"detail": f"prediction failed: {exc}"}, status_code=500)
        out = []
        for record, p in zip(records, predictions):
            p.id, p.description = record.id, record.description
            out.append(prediction_record(p))
        doc = result_document(out)
        doc["model"] = model_name
        return Response(json.dumps(doc, separators=(",", ":")), media_type="application/json")

    return app


def _swagger_ui_dir() -> Path | None:
    """The Swagger UI 5 files shipped in the swagger-ui-py package (found without importing it)."""
    from importlib.util import find_spec

    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(list(spec.submodule_search_locations)[0]) / "static"
    return static if (static / "swagger-ui-bundle.js").exists() else None


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI from local files (offline); without them, /docs points to /openapi.json."""
    assets = _swagger_ui_dir()
    if assets is not None:
        from fastapi.openapi.docs import get_swagger_ui_html

        app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def docs():
            return get_swagger_ui_html(openapi_url="/openapi.json", title="dbmtl API",
                                       swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                       swagger_css_url="/docs-assets/swagger-ui.css",
                                       swagger_favicon_url="/docs-assets/favicon-32x32.png")
    else:
        @app.get("/docs", include_in_schema=False)
        async def docs():
            return HTMLResponse('<p>Interactive docs need the swagger-ui-py package (pip install '
                                "'dbmtl[serve]'); the API description is at <a href=\"/openapi.json\">/openapi.json</a>.</p>")


def serve(model: str = "default", host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
          batch_residues: int = 16384, wait_ms: float = 5.0, access_log: bool = False, **predictor_options) -> None:
    """Load the model once and run the app under uvicorn until interrupted."""
    import uvicorn

    from ..inference import Predictor

    predictor = Predictor.from_pretrained(model, **predictor_options)
    app = create_app(predictor, limits, batch_residues, wait_ms, model_name=str(model))
    print(f"dbmtl serve: http://{host}:{port}/  (API: POST /predict, GET /health; docs: /docs, /openapi.json)",
          flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)
