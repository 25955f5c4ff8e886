# SPDX-License-Identifier: Apache-2.0
"""Serve a simulated TinyFix device on a pseudo-terminal until Ctrl-C.

    python -m tinyfix.twin [--model M.tflite] [--drift field] [--persist params.bin]

It prints the pty path; point the host tool at it (`--port /dev/pts/N`). With `--smp-port N`
it also serves the TinyFix MCUmgr group over SMP/UDP (`--smp udp://127.0.0.1:N`). With `--noise-*`
it serves a fault-injecting line in front of it instead and prints that one's URL
(`--port socket://127.0.0.1:N`): bits flipped, bytes dropped or doubled at the given rates.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tinyfix.demo_data.gesture_data import CLASS_NAMES
from tinyfix.errors import run_command
from tinyfix.twin.noisy_line import LineFaults, NoisyLine
from tinyfix.twin.sensor import PROFILES
from tinyfix.twin.twin import Twin


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tinyfix.twin",
        description="Serve a simulated TinyFix device (TFLite Micro + the tinyfix C code) "
                    "on a pseudo-terminal.",
    )
    p.add_argument("--model", type=Path, help="int8 .tflite to run (default: the bundled "
                   "gesture demo model)")
    sensor = p.add_argument_group("sensor (CAPTURE)")
    sensor.add_argument("--drift", choices=PROFILES, default="lab",
                        help="accelerometer profile: calibrated bench unit or drifted field "
                             "device (default: %(default)s)")
    sensor.add_argument("--seed", type=int, default=1,
                        help="seed of the sensor's windows (default: %(default)s)")
    sensor.add_argument("--profile-seed", type=int,
                        help="which field device (default: the demo data's documented one)")
    sensor.add_argument("--gesture", choices=CLASS_NAMES,
                        help="capture only this gesture (default: the profile's class mix)")
    sensor.add_argument("--realtime", action="store_true",
                        help="deliver CAPTURE windows at the sensor's pace (1.28 s each)")
    dev = p.add_argument_group("device")
    dev.add_argument("--persist", type=Path, metavar="FILE",
                     help="store SET_PARAMS here and boot from it (default: no persistence)")
    dev.add_argument("--smp-port", type=int, metavar="N",
                     help="also serve the TinyFix MCUmgr group over SMP on UDP port N of "
                          "127.0.0.1 (0: any free port; MCUmgr's usual one is 1337)")
    dev.add_argument("--float", action="store_true",
                     help="run the core's float path (a Cortex-M4F build) instead of integer")
    dev.add_argument("--debug", action="store_true", help="show tracebacks")
    noise = p.add_argument_group("a noisy line in front (tinyfix.twin.noisy_line)")
    noise.add_argument("--noise-bit-flips", type=float, default=0.0, metavar="P",
                       help="probability per byte that one bit flips, both directions")
    noise.add_argument("--noise-drops", type=float, default=0.0, metavar="P",
                       help="probability per byte that it is lost")
    noise.add_argument("--noise-duplicates", type=float, default=0.0, metavar="P",
                       help="probability per byte that it arrives twice")
    noise.add_argument("--noise-seed", type=int, default=0, help="seed of the faults")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(lambda: serve(args), args.debug)


def serve(args: argparse.Namespace) -> int:
    twin = Twin(args.model, sensor=args.drift, seed=args.seed, profile_seed=args.profile_seed,
                gesture=args.gesture, persist=args.persist,
                variant="float" if args.float else "fixed", realtime=args.realtime)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    faults = LineFaults(args.noise_bit_flips, args.noise_drops, args.noise_duplicates)
    line = None
    smp = None
    try:
        path = twin.start()
        if args.smp_port is not None:
            from tinyfix.twin.smp_server import SmpServer

            smp = SmpServer(twin, port=args.smp_port)
            print(f"MCUmgr group over SMP: --smp {smp.start()}", file=sys.stderr, flush=True)
        if not faults.clean:
            line = NoisyLine(path, faults, seed=args.noise_seed)
            path = line.start()
            print(f"noisy line in front: {faults.describe()}", file=sys.stderr, flush=True)
        print(path, flush=True)
        print(f"simulated device: {twin.graph.name} (model CRC 0x{twin.graph.crc:08X}), "
              f"{args.drift} sensor, parameters: {twin.boot_params}; Ctrl-C stops",
              file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        if smp is not None:
            smp.stop()
        if line is not None:
            line.stop()
        twin.stop()
    return 0

if __name__ == "__main__":
    sys.exit(main())
