# SPDX-License-Identifier: Apache-2.0
"""Deliver a rebuilt firmware image over SMP with MCUboot, and keep it only if it works.

The image (MCUboot-signed: `west build --sysbuild` signs it with imgtool) goes to the
secondary slot, is marked for one test boot, and the device is reset. MCUboot swaps it in;
the new firmware is *not* confirmed. The host then asks it for INFO: only when it runs the
image that was sent and reports the parameter CRC the rebuild was for is the image
confirmed. Otherwise the device is reset once more without confirming, so MCUboot swaps the
previous image back (a firmware that never answers is reverted by the next reset, a power
cycle or a watchdog).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from hashlib import sha256
from io import BytesIO
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from tinyfix.errors import TinyfixError
from tinyfix.smp.client import SmpDevice
from tinyfix.smp.errors import SmpError


class ImageRolledBack(TinyfixError):
    """The new image booted but was not the one wanted: the previous one runs again."""


@dataclass(frozen=True)
class Delivery:
    image_hash: bytes
    params_crc: int
    outcome: str  # "confirmed" or "already running"


def image_hash(image: bytes) -> bytes:
    """The hash MCUmgr names an image by: its SHA256 TLV (what imgtool wrote)."""
    from smpclient.mcuboot import (
        IMAGE_TLV,
        IMAGE_TLV_INFO_MAGIC,
        ImageHeader,
        ImageTLVInfo,
    )

    try:
        header = ImageHeader.loads(image[:32])
        stream = BytesIO(image)
        # Protected TLVs (if any) come first; the SHA256 is among the regular ones.
        stream.seek(header.hdr_size + header.img_size + header.protect_tlv_size)
        tlvs = ImageTLVInfo.load_from(stream, IMAGE_TLV_INFO_MAGIC).load_tlvs_from(stream)
        found = [t.value for t in tlvs if t.header.type == IMAGE_TLV.SHA256]
    except Exception as err:
        raise TinyfixError(f"not an MCUboot image ({err}): sign it (west build --sysbuild "
                           "with MCUboot, or imgtool sign)") from err
    if not found:
        raise TinyfixError("not an MCUboot image with a SHA256 TLV: sign it with imgtool")
    return bytes(found[0])


def _active_hash(states: list[Any]) -> bytes | None:
    for state in states:
        if state.active and state.hash is not None:
            return bytes(state.hash)
    return None


def _reconnect(url: str, timeout_s: float, console: Console) -> SmpDevice | None:
    """Wait for the device to answer again after a reset; None when it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            dev = SmpDevice(url, timeout_s=2.0, retries=0)
        except SmpError:
            time.sleep(0.5)
            continue
        try:
            dev.info()
            return dev
        except SmpError:
            dev.close()
            time.sleep(0.5)
    console.print(f"[red]{url} did not answer within {timeout_s:.0f} s of the reset[/]")
    return None


def deliver(url: str, image_file: Path, params_crc: int, console: Console,
            boot_timeout_s: float = 60.0) -> Delivery:
    """Upload, test-boot, then confirm or roll back `image_file` on the device at `url`."""
    image = image_file.read_bytes()
    wanted = image_hash(image)
    label = wanted.hex()[:16]
    dev = SmpDevice(url)
    try:
        if _active_hash(dev.image_states()) == wanted:
            found = int(dev.info()["params_crc"])
            if found != params_crc:
                raise TinyfixError(f"{url} already runs image {label} but reports parameter "
                                   f"set 0x{found:08x}, not 0x{params_crc:08x}")
            console.print(f"{url} already runs image {label}: nothing to deliver")
            return Delivery(wanted, found, "already running")
        with Progress(TextColumn(f"upload {label}"), BarColumn(), DownloadColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("upload", total=len(image))
            dev.upload_image(image, lambda off, _n: bar.update(task, completed=off))
        console.print(f"uploaded {len(image)} bytes (sha256 {sha256(image).hexdigest()[:16]})"
                      f" to {url}; test boot")
        dev.test_image(wanted)
        dev.reset()
    finally:
        dev.close()

    booted = _reconnect(url, boot_timeout_s, console)
    if booted is None:
        raise TinyfixError(f"{url}: the test image did not come back; it is not confirmed, so "
                           "MCUboot restores the previous image on the next reset (power "
                           "cycle, or a watchdog)")
    try:
        running = _active_hash(booted.image_states())
        found = int(booted.info()["params_crc"])
        if running == wanted and found == params_crc:
            booted.confirm_running_image()
            console.print(f"image {label} runs parameter set 0x{found:08x}: confirmed")
            return Delivery(wanted, found, "confirmed")
        why = (f"it reports parameter set 0x{found:08x}, not 0x{params_crc:08x}"
               if running == wanted else "MCUboot did not boot it (still the old image)")
        console.print(f"[red]image {label}: {why}; rolling back[/]")
        if running == wanted:
            booted.reset()  # unconfirmed: MCUboot swaps the previous image back
    finally:
        booted.close()
    if running == wanted:
        back = _reconnect(url, boot_timeout_s, console)
        if back is None:
            raise TinyfixError(f"{url}: image {label} not kept ({why}); the rollback reset "
                               "was sent but the device has not answered since")
        try:
            now = _active_hash(back.image_states())
        finally:
            back.close()
        if now == wanted:
            raise TinyfixError(f"{url}: image {label} is still active after the rollback "
                               "reset (was it confirmed elsewhere?)")
    raise ImageRolledBack(f"{url}: image {label} not kept: {why}; the previous image runs")
