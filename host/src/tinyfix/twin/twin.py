# SPDX-License-Identifier: Apache-2.0
"""The simulated device: a model run by TFLite Micro, the tinyfix C core, the firmware's C
request dispatcher, a sensor, and a pseudo-terminal as its UART.

    with Twin() as twin:                     # the demo model, a lab sensor
        port = serial.serial_for_url(twin.port)
        info = Link(port).info()

Only the platform is Python (model invocation through tflite-micro, the sensor, the
parameter file standing in for flash); every byte on the wire and every correction comes
from the C code the firmware links.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from tinyfix import __version__
from tinyfix.core import Q16, Core, Corrector, Params
from tinyfix.errors import CoreError, TinyfixError
from tinyfix.twin.dispatcher import (
    DeviceOps,
    Dispatcher,
    Invoked,
    OpError,
    StaticInfo,
    Window,
)
from tinyfix.twin.model import ModelGraph
from tinyfix.twin.pty_server import PtyServer
from tinyfix.twin.sensor import WINDOW_MS, Sensor
from tinyfix.twin.tflm import TflmRunner
from tinyfix.wire.messages import TensorDesc
from tinyfix.wire.protocol import MIN_FRAME, OVERHEAD, DType, Status

# The simulated device sizes its frames to the model, as a firmware build would: enough for
# a whole INFER of a small model, chunks (WRITE/READ) for a large one.
SMALLEST_FRAME = 1024
LARGEST_FRAME = 8192
INFER_RSP_FIXED = 27  # INFER response fields besides the tensors, docs/protocol.md 5.2

log = logging.getLogger("tinyfix.twin")

BOARD = "tinyfix-twin"
# INFER cycles are host nanoseconds (time.perf_counter_ns), which INFO says with cycle_hz.
CYCLE_HZ = 1_000_000_000


def frame_for(graph: ModelGraph) -> int:
    """A frame that carries this model's whole INFER (request and response) when that is at
    most LARGEST_FRAME bytes, else LARGEST_FRAME (the rest goes in chunks)."""
    features = graph.feature.n_elements if graph.feature is not None else 0
    request = OVERHEAD + 2 + graph.input.nbytes
    response = OVERHEAD + INFER_RSP_FIXED + graph.output.nbytes + 2 * graph.n_classes + features
    return max(MIN_FRAME, SMALLEST_FRAME, min(LARGEST_FRAME, max(request, response)))


def default_model() -> Path:
    """The bundled demo model (or TINYFIX_DEMO_MODEL)."""
    env = os.environ.get("TINYFIX_DEMO_MODEL")
    path = Path(env) if env else (
        Path(__file__).resolve().parents[4] / "models" / "gesture" / "gesture_int8.tflite")
    if not path.is_file():
        raise TinyfixError(f"cannot find the demo model at {path}; give a model with --model "
                           "or set TINYFIX_DEMO_MODEL")
    return path


class Twin:
    """A TinyFix device in this process, reachable on a pty after start().

    Args:
        model: an int8 .tflite (default: the bundled gesture model).
        sensor: "lab" or "field" drift profile of the simulated accelerometer.
        seed: seed of the sensor's windows.
        profile_seed: which field device (default: the demo data's documented one).
        gesture: make every captured window this class (None: the profile's class mix).
        persist: file that stands in for flash; SET_PARAMS stores there and a new Twin with
            the same file boots with the stored set. None: no persistence.
        params: parameter blob to boot with when nothing is persisted (default: identity).
        variant: core build, "fixed" (every Cortex-M) or "float" (FPU path).
        max_frame: largest frame the device accepts and sends (default: sized to the
            model, see frame_for()).
        realtime: deliver CAPTURE windows at the sensor's pace (1.28 s each) instead of at
            once.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        sensor: str = "lab",
        seed: int = 1,
        profile_seed: int | None = None,
        gesture: str | None = None,
        persist: str | Path | None = None,
        params: bytes | None = None,
        variant: str = "fixed",
        max_frame: int | None = None,
        realtime: bool = False,
    ) -> None:
        self._boot = time.monotonic()
        self.graph = ModelGraph.load(model if model is not None else default_model())
        self.runner = TflmRunner(self.graph)
        self.core = Core(variant)
        self.model_info = self.graph.model_info(self.core)
        self.corrector = Corrector(self.core, self.model_info)
        self.persist_path = Path(persist) if persist is not None else None
        self.realtime = realtime
        self.sensor: Sensor | None = None
        if self.graph.input.n_elements == int(np.prod(Sensor.shape)):
            self.sensor = Sensor(sensor, seed, profile_seed, gesture)
        self.boot_params = self._boot_params(params)
        self._server: PtyServer | None = None
        self._next_window = 0.0
        feature = self.graph.feature
        info = StaticInfo(
            model_crc=self.graph.crc,
            input=self.graph.input.desc(),
            output=self.graph.output.desc(),
            feature=feature.desc() if feature and self.model_info.n_features else TensorDesc(),
            cycle_hz=CYCLE_HZ,
            fw_version=f"twin {__version__}",
            board=BOARD,
        )
        self.dispatcher = Dispatcher(self.corrector, DeviceOps(
            write=self._write,
            info=info,
            invoke=self._invoke,
            capture=self._capture if self.sensor is not None else None,
            persist=self._persist if self.persist_path is not None else None,
            cycles=lambda: time.perf_counter_ns(),
            uptime_ms=self.uptime_ms,
            # As the firmware: only a model that keeps state offers the reset.
            reset_model=self.runner.reset if self.graph.state else None,
        ), max_frame=max_frame if max_frame is not None else frame_for(self.graph))

    # Life cycle.

    def start(self) -> str:
        """Serve on a new pseudo-terminal; returns its path (/dev/pts/N)."""
        if self._server is not None:
            return self._server.path
        server = PtyServer(self.dispatcher.feed, name=f"tinyfix-twin-{self.graph.name}")
        path = server.start()
        self._server = server
        log.info("simulated device for %s on %s", self.graph.name, path)
        return path

    def stop(self) -> None:
        """Stop serving and release the pty; the twin can not be restarted."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Twin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> str:
        """The pty path the host opens (empty before start())."""
        return self._server.path if self._server is not None else ""

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions the platform ops or the server caught while serving."""
        found = list(self.dispatcher.errors)
        if self._server is not None and self._server.error is not None:
            found.append(self._server.error)
        return found

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self._boot) * 1000)

    # Boot.

    def _boot_params(self, params: bytes | None) -> str:
        """Apply the stored or given set, as firmware does at boot; says which one runs."""
        if self.persist_path is not None and self.persist_path.is_file():
            blob = self.persist_path.read_bytes()
            if self._apply(blob, f"the stored set in {self.persist_path}"):
                return "persisted"
        if params is not None and self._apply(params, "the given parameter set"):
            return "given"
        return "identity"

    def _apply(self, blob: bytes, what: str) -> bool:
        try:
            self.corrector.set_params(Params.decode(self.core, blob))
        except CoreError as err:
            log.warning("simulated device ignores %s: %s", what, err)
            return False
        return True

    # Platform ops, called by the C dispatcher from the server thread.

    def _write(self, data: bytes) -> None:
        if self._server is not None:
            self._server.write(data)

    def _invoke(self, data: bytes, features: bool) -> Invoked:
        raw, feats, ns = self.runner.invoke(data, features)
        return Invoked(raw, feats, max(1, ns))

    def _capture(self, dtype: int) -> Window:
        assert self.sensor is not None
        if self.realtime:
            wait = self._next_window - time.monotonic()
            if wait > 0:
                threading.Event().wait(wait)
            self._next_window = max(self._next_window, time.monotonic()) + WINDOW_MS / 1000
        t_ms = self.uptime_ms()
        x, _ = self.sensor.read()
        if dtype == DType.FLOAT32:
            return Window(np.ascontiguousarray(x, dtype=np.float32).tobytes(), t_ms)
        if self.model_info.n_channels == 0:
            raise OpError(Status.ERR_UNSUPPORTED, "the model input is not int8 channels")
        q16 = np.floor(x.astype(np.float64) * Q16 + 0.5).astype(np.int32)
        return Window(self.corrector.input_correct(q16.reshape(-1, x.shape[-1])).tobytes(), t_ms)

    def _persist(self, blob: bytes) -> bool:
        assert self.persist_path is not None
        path = self.persist_path
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        except OSError as err:
            log.warning("simulated device cannot store parameters in %s: %s", path, err)
            return False
        return True
