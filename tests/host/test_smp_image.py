# SPDX-License-Identifier: Apache-2.0
"""Image delivery over SMP with MCUboot (tinyfix.smp.image), against a simulated MCUboot.

The device is the twin serving the TinyFix group over SMP/UDP, plus a small model of what
MCUboot and MCUmgr's image and OS groups do on a board: upload into the secondary slot
(resumable by SHA-256, as Zephyr's img_mgmt), mark for a test boot, swap on reset, revert
an unconfirmed image on the next reset, confirm. An "image" here is imgtool-signed (the
real tool, as `west build --sysbuild` runs it) and its payload is the parameter set the
rebuilt firmware would boot with, so the device's INFO after the swap says which image
runs. No real firmware: tests/app covers the group on native_sim.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cbor2
import pytest
from rich.console import Console

from tinyfix.core import Params
from tinyfix.errors import TinyfixError
from tinyfix.smp.client import open_device
from tinyfix.smp.image import ImageRolledBack, deliver, image_hash
from tinyfix.twin.smp_server import SmpServer
from tinyfix.twin.twin import Twin

IMG_GROUP, IMG_STATE, IMG_UPLOAD = 1, 0, 1
OS_GROUP, OS_RESET = 0, 5
MAGIC = b"TFIMG"
BOOT_S = 0.3  # the simulated device answers nothing this long after a reset


class NoAnswer(Exception):
    """The simulated device drops this request (a lost datagram)."""


@dataclass
class Slot:
    image: bytes
    sha: bytes  # the SHA256 TLV: the hash MCUmgr names images by
    confirmed: bool = True
    pending: bool = False


@dataclass
class FakeMcuboot:
    """MCUboot's swap-with-revert and MCUmgr's image/OS groups, on the twin's SMP server."""

    twin: Twin
    server: SmpServer
    primary: Slot
    secondary: Slot | None = None
    upload: bytearray = field(default_factory=bytearray)
    upload_sha: bytes | None = None
    upload_len: int = 0
    bytes_written: int = 0
    drop_upload_answer_at: int | None = None
    boots: list[str] = field(default_factory=list)
    boot_s: float = BOOT_S

    def attach(self) -> None:
        self.server.extra_groups[IMG_GROUP] = self.image_group
        self.server.extra_groups[OS_GROUP] = self.os_group

    def image_group(self, cmd: int, write: bool, payload: bytes) -> bytes | None:
        req = cbor2.loads(payload) if payload else {}
        if cmd == IMG_UPLOAD and write:
            return cbor2.dumps(self._upload(req))
        if cmd == IMG_STATE:
            if write:
                self._state_write(req)
            return cbor2.dumps({"images": self._states()})
        return None

    def os_group(self, cmd: int, write: bool, payload: bytes) -> bytes | None:
        if cmd == OS_RESET and write:
            self._reset()
            return cbor2.dumps({})
        return None  # echo and MCUmgr parameters: the server's own

    def _upload(self, req: dict) -> dict:
        off, data = int(req["off"]), bytes(req["data"])
        if off == 0 and not (req.get("sha") and req.get("sha") == self.upload_sha
                             and req.get("len") == self.upload_len and self.upload):
            self.upload, self.upload_sha, self.upload_len = bytearray(), req.get("sha"), req["len"]
        elif off == 0:
            return {"off": len(self.upload)}  # the same image again: resume where it stopped
        if off != len(self.upload):
            return {"off": len(self.upload)}
        self.upload += data
        self.bytes_written += len(data)
        if self.drop_upload_answer_at is not None and off >= self.drop_upload_answer_at:
            self.drop_upload_answer_at = None
            raise NoAnswer
        rsp: dict = {"off": len(self.upload)}
        if len(self.upload) == self.upload_len:
            image = bytes(self.upload)
            self.secondary = Slot(image, image_hash(image), confirmed=False)
            if self.upload_sha is not None:
                rsp["match"] = hashlib.sha256(image).digest() == self.upload_sha
        return rsp

    def _state_write(self, req: dict) -> None:
        if req.get("confirm"):
            self.primary.confirmed = True
        elif self.secondary is not None and req.get("hash") == self.secondary.sha:
            self.secondary.pending = True

    def _states(self) -> list[dict]:
        states = [{"slot": 0, "version": "1.0.0", "hash": self.primary.sha, "bootable": True,
                   "pending": False, "confirmed": self.primary.confirmed, "active": True,
                   "permanent": False}]
        if self.secondary is not None:
            states.append({"slot": 1, "version": "1.0.0", "hash": self.secondary.sha,
                           "bootable": True, "pending": self.secondary.pending,
                           "confirmed": False, "active": False, "permanent": False})
        return states

    def _reset(self) -> None:
        if self.secondary is not None and self.secondary.pending:
            # Test swap: the new image runs once, unconfirmed; the old waits in slot 1.
            self.primary, self.secondary = Slot(self.secondary.image, self.secondary.sha,
                                                confirmed=False), self.primary
            self.boots.append("test")
        elif not self.primary.confirmed and self.secondary is not None:
            self.primary, self.secondary = self.secondary, None  # revert
            self.primary.confirmed = True
            self.boots.append("revert")
        else:
            self.boots.append("same")
        self._boot()
        self.server.go_offline(self.boot_s)

    def _boot(self) -> None:
        blob = payload_of(self.primary.image)
        params = Params.decode(self.twin.core, blob)
        self.twin.corrector.set_params(params)


def payload_of(image: bytes) -> bytes:
    start = image.index(MAGIC) + len(MAGIC)
    length = int.from_bytes(image[start:start + 4], "little")
    return image[start + 4:start + 4 + length]


def signed_image(tmp: Path, name: str, blob: bytes) -> Path:
    """A firmware stand-in whose payload is the parameter set, signed with imgtool."""
    raw, out = tmp / f"{name}.bin", tmp / f"{name}.signed.bin"
    raw.write_bytes(MAGIC + len(blob).to_bytes(4, "little") + blob + bytes(300))
    subprocess.run([sys.executable, "-m", "imgtool.main", "sign", "--header-size", "0x200",
                    "--pad-header", "--align", "4", "--slot-size", "0x20000", "--version",
                    "1.0.0", str(raw), str(out)], check=True, capture_output=True)
    return out


def running_crc(server: SmpServer) -> int:
    """The parameter set the device reports in INFO."""
    with open_device(server.url) as dev:
        return int(dev.info()["params_crc"])


def a_set(twin: Twin, bias: int) -> Params:
    p = Params.identity(twin.core, twin.model_info)
    p.c.class_bias[0] = bias * 65536 // 4
    return p.seal()


@pytest.fixture()
def device(tmp_path):
    twin = Twin()
    server = SmpServer(twin)
    old = signed_image(tmp_path, "old", a_set(twin, 1).encode())
    old_bytes = old.read_bytes()
    boot = FakeMcuboot(twin, server, Slot(old_bytes, image_hash(old_bytes)))
    boot.attach()
    boot._boot()
    server.start()
    yield twin, server, boot
    server.stop()
    assert server.error is None


def test_a_working_image_is_uploaded_test_booted_and_confirmed(device, tmp_path):
    twin, server, boot = device
    new_params = a_set(twin, 3)
    new = signed_image(tmp_path, "new", new_params.encode())
    done = deliver(server.url, new, new_params.crc, Console(quiet=True), boot_timeout_s=10)
    assert done.outcome == "confirmed"
    assert done.image_hash == image_hash(new.read_bytes()) == boot.primary.sha
    assert boot.primary.confirmed and boot.boots == ["test"]
    assert running_crc(server) == new_params.crc
    assert boot.bytes_written == new.stat().st_size  # each byte once


def test_an_image_reporting_another_parameter_set_is_rolled_back(device, tmp_path):
    twin, server, boot = device
    old_sha, old_crc = boot.primary.sha, running_crc(server)
    wanted = a_set(twin, 3)
    wrong = signed_image(tmp_path, "wrong", a_set(twin, 2).encode())  # built from stale files
    with pytest.raises(ImageRolledBack, match=f"not 0x{wanted.crc:08x}"):
        deliver(server.url, wrong, wanted.crc, Console(quiet=True), boot_timeout_s=10)
    assert boot.boots == ["test", "revert"]
    assert boot.primary.sha == old_sha and boot.primary.confirmed
    assert running_crc(server) == old_crc


def test_an_upload_resumes_after_a_lost_answer_without_writing_twice(device, tmp_path):
    twin, server, boot = device
    new_params = a_set(twin, 3)
    new = signed_image(tmp_path, "new", new_params.encode())
    boot.drop_upload_answer_at = 256
    done = deliver(server.url, new, new_params.crc, Console(quiet=True), boot_timeout_s=10)
    assert done.outcome == "confirmed"
    assert boot.bytes_written == new.stat().st_size


def test_an_image_that_never_answers_is_left_unconfirmed(device, tmp_path):
    twin, server, boot = device
    new_params = a_set(twin, 3)
    new = signed_image(tmp_path, "hangs", new_params.encode())
    boot.boot_s = 60.0  # the new firmware hangs before its SMP transport is up
    with pytest.raises(TinyfixError, match="did not come back"):
        deliver(server.url, new, new_params.crc, Console(quiet=True), boot_timeout_s=3)
    assert boot.boots == ["test"] and not boot.primary.confirmed  # MCUboot reverts it next


def test_the_running_image_is_not_sent_again(device, tmp_path):
    _, server, boot = device
    old_image = tmp_path / "running.signed.bin"
    old_image.write_bytes(boot.primary.image)
    done = deliver(server.url, old_image, running_crc(server), Console(quiet=True))
    assert done.outcome == "already running"
    assert boot.bytes_written == 0 and boot.boots == []


def test_an_unsigned_file_is_refused_before_anything_is_sent(device, tmp_path):
    _, server, boot = device
    unsigned = tmp_path / "zephyr.bin"
    unsigned.write_bytes(bytes(1000))
    with pytest.raises(TinyfixError, match="not an MCUboot image"):
        deliver(server.url, unsigned, 0, Console(quiet=True))
    assert boot.bytes_written == 0
