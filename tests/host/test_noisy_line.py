# SPDX-License-Identifier: Apache-2.0
"""A noisy line (issue 14): the host re-sends at once when it sees an exchange is garbled,
every answer is still the right one, and no request runs twice on the device.

The faults come from tinyfix.twin.noisy_line: in memory against the C dispatcher, on a fake
clock for the timing rules, and through the TCP proxy in front of the simulated device.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st
from test_link_dispatch import N_IN, Device, MemoryPort
from test_wire_chunks import ChunkDevice, digest_model
from test_wire_link import INFO, fake_link, reply

from tinyfix.twin.noisy_line import Corrupter, LineFaults, NoisyLine
from tinyfix.wire import (
    CaptureRequest,
    CaptureResponse,
    DType,
    Flag,
    Frame,
    Link,
    LinkIOError,
    MsgType,
    StatsResponse,
    decode_frame,
)


def corrupter(seed: int = 0, **faults: float) -> Corrupter:
    return Corrupter(LineFaults(**faults), np.random.default_rng(seed))


@given(st.binary(max_size=2000), st.integers(0, 2**32 - 1))
def test_a_clean_line_changes_nothing(data, seed):
    assert corrupter(seed)(data) == data


@given(st.binary(min_size=1, max_size=500), st.integers(0, 2**32 - 1))
def test_flips_change_one_bit_per_counted_byte_and_keep_the_length(data, seed):
    c = corrupter(seed, bit_flips=0.05)
    out = c(data)
    assert len(out) == len(data)
    changed = [bin(a ^ b).count("1") for a, b in zip(data, out, strict=True) if a != b]
    assert changed == [1] * c.counts.flipped


@given(st.binary(min_size=1, max_size=500), st.integers(0, 2**32 - 1))
def test_drops_and_duplicates_change_the_length_by_their_counts(data, seed):
    c = corrupter(seed, drops=0.05, duplicates=0.05)
    out = c(data)
    assert len(out) == len(data) - c.counts.dropped + c.counts.duplicated


def test_fault_rates_are_the_ones_asked_for_and_a_seed_repeats_them():
    data = bytes(200_000)
    c = corrupter(3, bit_flips=1e-3, drops=1e-3, duplicates=1e-3)
    first = c(data)
    for count in (c.counts.flipped, c.counts.dropped, c.counts.duplicated):
        assert 130 < count < 270  # 200 expected; 5 sigma is about 70
    assert corrupter(3, bit_flips=1e-3, drops=1e-3, duplicates=1e-3)(data) == first
    with pytest.raises(ValueError, match="probability"):
        LineFaults(bit_flips=1.5)


class NoisyMemoryPort(MemoryPort):
    """The C dispatcher behind a line that corrupts both directions."""

    def __init__(self, device: Device, faults: LineFaults, seed: int) -> None:
        super().__init__(device)
        rng = np.random.default_rng(seed)
        self.to_device = Corrupter(faults, np.random.default_rng(rng.integers(2**63)))
        self.to_host = Corrupter(faults, np.random.default_rng(rng.integers(2**63)))

    def write(self, data: bytes) -> int:
        self.device.dispatcher.feed(self.to_device(bytes(data)))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        return self.to_host(super().read(size))


def test_every_answer_survives_a_noisy_line_and_no_request_runs_twice(core):
    rng = np.random.default_rng(5)
    inputs = [rng.integers(-128, 128, N_IN, dtype=np.int8).tobytes() for _ in range(300)]
    clean = Link(MemoryPort(Device(core)), seq=1, timeout=0.5)
    expected = [clean.infer(x) for x in inputs]

    device = Device(core)
    faults = LineFaults(bit_flips=2e-3, drops=5e-4, duplicates=5e-4)
    link = Link(NoisyMemoryPort(device, faults, seed=11), seq=1, timeout=0.5)
    got = [link.infer(x) for x in inputs]

    assert [(r.raw, r.decision) for r in got] == [(r.raw, r.decision) for r in expected]
    assert device.invoked == len(inputs), "a re-sent INFER was executed again"
    assert link.stats.garbled > 20, "the line was meant to garble some exchanges"
    # Garbled exchanges are re-sent at once; at most a rare request whose every piece is
    # too short to carry a header waits out its timeout.
    assert link.stats.timeouts <= 1


def test_on_a_line_that_garbles_large_frames_a_large_input_goes_in_smaller_chunks(core):
    # A 3,000-byte input fits the device's 4 kB frame, but at 1e-3 flipped bits per byte
    # such a frame arrives one time in twenty: after a few garbled exchanges the link sends
    # it with WRITE in frames the line carries (ln(4/3) / 1e-3 is 288 bytes), and the answers
    # stay exact.
    device = ChunkDevice(core, 3000, max_frame=4096)
    port = NoisyMemoryPort(device, LineFaults(bit_flips=1e-3), seed=3)
    link = Link(port, seq=1, timeout=0.5)
    link.info()
    rng = np.random.default_rng(4)
    inputs = [rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() for _ in range(12)]
    for x in inputs:
        assert link.infer(x).raw == digest_model(x)[0]
    assert link.stats.garbled >= 8
    assert 256 <= link.line_frame <= 1000
    writes = device.dispatcher.stats().frames_ok - len(inputs) - 1
    assert writes > len(inputs), "the later inputs went in WRITE chunks"


def test_a_clean_line_keeps_the_devices_frame_size(core):
    device = ChunkDevice(core, 3000, max_frame=4096)
    link = Link(MemoryPort(device), seq=1, timeout=0.5)
    link.info()
    link.infer(bytes(3000))
    assert link.line_frame == 4096
    assert device.dispatcher.stats().frames_ok == 2  # INFO and one inline INFER


def test_a_garbled_answer_is_re_sent_at_once_with_identical_bytes():
    def device(req: Frame, attempt: int) -> bytes:
        wire = bytearray(reply(req, INFO))
        if attempt == 1:
            wire[-3] ^= 0x10  # a CRC byte
        return bytes(wire)

    link, port = fake_link(device, seq=7, timeout=5.0)
    clock = port.clock
    assert link.info() == INFO
    assert len(port.writes) == 2 and port.writes[0] == port.writes[1]
    assert link.stats.garbled == 1 and link.stats.timeouts == 0
    assert clock.now < 0.5 and not clock.slept, "waited instead of re-sending"


def test_an_answer_that_lost_its_end_is_re_sent_after_the_idle_gap_not_the_timeout():
    def device(req: Frame, attempt: int) -> bytes:
        wire = reply(req, StatsResponse(uptime_ms=attempt))
        return wire[:-1] if attempt == 1 else wire  # the closing delimiter is lost

    link, port = fake_link(device, seq=7, timeout=5.0)
    clock = port.clock
    # Silent past the idle gap with a partial frame buffered: re-sent. Only the delimiter
    # was lost, so the answer's leading delimiter completes the first, intact answer.
    assert link.device_stats().uptime_ms == 1
    assert len(port.writes) == 2 and port.writes[0] == port.writes[1]
    assert link.stats.lost_ends == 1 and link.stats.timeouts == 0
    assert clock.now < 0.5


def test_a_request_ends_with_a_spare_delimiter_so_a_corrupted_last_byte_still_ends_it():
    link, port = fake_link(lambda req, n: reply(req, INFO))
    link.info()
    assert port.writes[0].endswith(b"\x00\x00")
    assert decode_frame(port.writes[0][:-1]).type == MsgType.INFO


def test_a_line_too_noisy_for_any_answer_fails_with_a_clear_error():
    def device(req: Frame, attempt: int) -> bytes:
        wire = bytearray(reply(req, INFO))
        wire[-3] ^= 0x01
        return bytes(wire)

    link, port = fake_link(device, seq=7, timeout=5.0, garble_retries=5, retries=1)
    clock = port.clock
    with pytest.raises(LinkIOError,
                       match=r"2 runs of 6 garbled answers in a row to INFO.*too noisy"):
        link.info()
    # Each attempt is a run of immediate re-sends; between the runs it backs off.
    assert len(port.writes) == 12 and len(clock.slept) == 2


def window(req: Frame, index: int, count: int, last: bool) -> bytes:
    msg = CaptureResponse(index, count, 1280 * index, DType.FLOAT32, bytes(4 * N_IN))
    return reply(req, msg, flags=0 if last else Flag.MORE)


def test_a_window_lost_inside_a_capture_stream_is_made_up_for():
    requests: list[tuple[int, int]] = []

    def device(req: Frame, attempt: int) -> bytes:
        count = CaptureRequest.decode(req.payload).count
        if requests and requests[-1][0] == req.seq:  # a repeat: the kept last window
            return window(req, count - 1, count, True)
        requests.append((req.seq, count))
        out = b""
        for i in range(count):
            wire = bytearray(window(req, i, count, i == count - 1))
            if len(requests) == 1 and i == 1:
                wire[-3] ^= 0x01
            out += bytes(wire)
        return out

    link, _ = fake_link(device, seq=7, timeout=5.0)
    got = list(link.capture(4))
    assert [w.index for w in got] == [0, 1, 2, 3] and {w.count for w in got} == {4}
    assert [count for _, count in requests] == [4, 1]
    assert link.stats.lost_windows == 1 and link.stats.timeouts == 0


def test_the_simulated_device_behind_the_noisy_proxy_answers_like_a_clean_line():
    from tinyfix.twin import Twin

    rng = np.random.default_rng(2)
    with Twin() as twin:
        n_in = twin.graph.input.n_elements
        inputs = [rng.integers(-128, 128, n_in, dtype=np.int8).tobytes() for _ in range(150)]
        runs = {}
        for name, faults in (("clean", LineFaults()),
                             ("noisy", LineFaults(bit_flips=1e-3, drops=1e-4, duplicates=1e-4))):
            with NoisyLine(twin.port, faults, seed=4) as line:
                port = serial.serial_for_url(line.url, timeout=0.05)
                link = Link(port, timeout=2.0)
                link.info()
                before = link.device_stats().inferences
                started = time.monotonic()
                runs[name] = [link.infer(x, reset=True).raw for x in inputs]
                runs[name + " seconds"] = time.monotonic() - started
                runs[name + " runs"] = link.device_stats().inferences - before
                runs[name + " link"] = link.stats
                port.close()
        assert not twin.errors
    assert runs["noisy"] == runs["clean"]
    assert runs["noisy runs"] == runs["clean runs"] == len(inputs)
    assert runs["noisy link"].garbled > 0 and runs["noisy link"].timeouts <= 1
    # Each garbled exchange costs a round trip, not a 2 s timeout.
    assert runs["noisy seconds"] < runs["clean seconds"] + 2.0


def test_the_twin_command_serves_a_noisy_line_the_host_tools_work_through(tmp_path):
    import subprocess
    import sys

    twin = subprocess.Popen([sys.executable, "-m", "tinyfix.twin", "--noise-bit-flips", "2e-3",
                             "--noise-seed", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert twin.stdout is not None
        url = twin.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        info = subprocess.run([sys.executable, "-m", "tinyfix.cli", "info", "--port", url],
                              capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert "0x338d82a7" in info.stdout.lower()
    finally:
        twin.terminate()
        twin.wait(timeout=10)
    assert "noisy line in front: bit flips 0.002/byte" in twin.stderr.read()
