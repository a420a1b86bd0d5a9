from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Without a GPU, Triton kernels can only run in the interpreter; set it before triton loads.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real files in ../shared/data; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the seaview CLI in a subprocess (as a user would)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "seaview.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def scramble_page_body(part: Path, column: int = 0) -> None:
    """Damage the body of ``part``'s first data page of ``column``, keeping the page's header
    and the footer: the run opens (footers and page headers read), its pages do not."""
    import pyarrow.parquet as pq

    from seaview.store.integrity import CompactReader

    data = bytearray(part.read_bytes())
    start = pq.read_metadata(part).row_group(0).column(column).data_page_offset
    header = CompactReader(bytes(data[start:]))
    body = header.struct()[3]  # its compressed size
    for i in range(start + header.pos, start + header.pos + min(36, body)):
        data[i] ^= 0xFF
    part.write_bytes(bytes(data))


@contextlib.contextmanager
def s3_server(bucket: str):
    """An S3-compatible server (moto) on localhost with ``bucket`` created, its endpoint and
    test credentials in os.environ (restored after): pyarrow, polars and subprocesses use it."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=bucket)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


ODD_VALUES = [None, 1, -1, 2**70, 1.5, float("nan"), "x", "", [], {}, [1], {"a": 1}, True, ["x"], [{"type": "image"}],
              [{"type": 3}], "2026-13-45T99:99"]


def mutate(obj, rng) -> None:
    """Put a value of another type (ODD_VALUES) somewhere inside ``obj`` (a dict or list), at
    any depth, or leave a key out: the importers' fuzz tests feed them files no tool writes."""
    import copy

    keys = list(obj) if isinstance(obj, dict) else list(range(len(obj)))
    if not keys:
        return
    k = rng.choice(keys)
    if isinstance(obj[k], (dict, list)) and obj[k] and rng.random() < 0.6:
        mutate(obj[k], rng)
    elif isinstance(obj, dict) and rng.random() < 0.2:
        del obj[k]
    else:
        obj[k] = copy.deepcopy(rng.choice(ODD_VALUES))
