# SPDX-License-Identifier: Apache-2.0
"""`tinyfix calibrate --smp URL`: capture over MCUmgr, fit label-free, deliver, check.

The device records the windows it classifies on its own (CAPTURE: raw outputs and
features, no labels); the fit is `tinyfix fit --unlabeled` on that capture, with `--data`
(labelled lab windows) as its lab reference. The chosen set then goes back over SMP:
`--push` (the group's chunked PARAMS write, applied and persisted), or `--flash`: the
application rebuilt with the set (sysbuild with MCUboot, so the image is signed),
delivered through MCUmgr's image group and kept only when the test boot reports the set's
CRC (tinyfix.smp.image).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from tinyfix import params_io
from tinyfix.calibrate import require_west, run_west
from tinyfix.core import Core, Params
from tinyfix.errors import TinyfixError
from tinyfix.smp import commands
from tinyfix.smp.client import open_device
from tinyfix.smp.image import deliver
from tinyfix.smp.url import parse
from tinyfix.twin import ModelGraph, default_model
from tinyfix.unlabeled_job import UnlabeledJob, run_unlabeled

# The SMP transport a rebuilt image must keep, by --smp scheme (app/smp_*.conf): an image
# without it could not answer its test boot and MCUboot would revert it.
TRANSPORT_CONF = {"udp": "smp_udp.conf", "serial": "smp_serial.conf", "ble": "smp_ble.conf"}


@dataclass
class SmpCalibrateJob:
    url: str
    windows: int
    # The label-free fit of the capture: its `unlabeled` is where the capture is written.
    fit: UnlabeledJob
    push: bool = False
    flash: bool = False
    board: str | None = None
    app: Path = Path("app")

    @property
    def out(self) -> Path:
        return self.fit.out


def run(job: SmpCalibrateJob, console: Console) -> Params:
    model = ModelGraph.load(job.fit.model if job.fit.model is not None else default_model())
    with open_device(job.url) as dev:
        running = int(dev.info()["model_crc"])
    if running != model.crc:
        raise TinyfixError(f"{job.url} runs model 0x{running:08x}, not {model.name} "
                           f"(0x{model.crc:08x}): give the device's .tflite with --model")
    commands.capture(job.url, job.windows, job.fit.unlabeled, console)
    run_unlabeled(job.fit, console)
    params = params_io.read_params_yaml(job.out / "params.yaml", Core())
    if job.push:
        result = commands.push(job.url, params.encode(), console)
        if result["crc"] != params.crc:
            raise TinyfixError(f"{job.url} runs 0x{result['crc']:08x} after the push, "
                               f"not 0x{params.crc:08x}")
    elif job.flash:
        image = west_build_signed(job, console)
        deliver(job.url, image, params.crc, console)
    return params


def west_build_signed(job: SmpCalibrateJob, console: Console) -> Path:
    """Rebuild the application with the fitted set, MCUboot-signed; the image's path."""
    board = require_west(job.board)
    app = job.app.resolve()
    confs = [job.out.resolve() / "tinyfix.conf", app / "smp.conf",
             app / TRANSPORT_CONF[parse(job.url).scheme], app / "smp_mcuboot.conf"]
    missing = [str(c) for c in confs if not c.is_file()]
    if missing:
        raise TinyfixError(f"--flash over SMP: missing {', '.join(missing)}")
    build_dir = job.out / "build"
    cmd = ["west", "build", "--sysbuild", "-b", board, str(app), "-d", str(build_dir),
           "--", "-DSB_CONFIG_BOOTLOADER_MCUBOOT=y",
           f"-DEXTRA_DTC_OVERLAY_FILE={(job.out / 'tinyfix.overlay').resolve()}",
           f"-DEXTRA_CONF_FILE={';'.join(str(c) for c in confs)}"]
    run_west(cmd, job.out, console)
    image = build_dir / app.name / "zephyr" / "zephyr.signed.bin"
    if not image.is_file():
        raise TinyfixError(f"the build made no signed image at {image} (is MCUboot in the "
                           "workspace?)")
    return image
