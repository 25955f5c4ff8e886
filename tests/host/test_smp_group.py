# SPDX-License-Identifier: Apache-2.0
"""The TinyFix MCUmgr group: the firmware's C group code (src/smp/tinyfix_smp.c), served by
the twin over SMP/UDP, driven by the host's smpclient-based client, and its CBOR codec on
its own (malformed requests, chunk rules) through tinyfix_smp_handle_buf."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix.core import Params
from tinyfix.smp import group
from tinyfix.smp.client import PARAMS_CHUNK, open_device
from tinyfix.smp.errors import SmpGroupError
from tinyfix.twin.smp_server import SmpServer
from tinyfix.twin.twin import Twin


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    store = tmp_path_factory.mktemp("flash") / "params.bin"
    twin = Twin(persist=store)
    server = SmpServer(twin)
    server.start()
    yield twin, server, store
    server.stop()
    assert server.error is None


@pytest.fixture()
def device(served):
    twin, server, _ = served
    with open_device(server.url) as dev:
        yield dev
    # Every test leaves the identity set behind.
    twin.corrector.set_params(Params.identity(twin.core, twin.model_info))


def raw_request(server: SmpServer, cmd: int, write: bool, payload: bytes) -> dict:
    """One request straight into the C group, as a device's SMP layer passes it."""
    lib, ffi = server._lib, server._ffi
    out = ffi.new("uint8_t[]", 2048)
    with server._lock:
        n = lib.tinyfix_smp_handle_buf(server._smp, group.GROUP_ID, cmd, write, payload,
                                       len(payload), out, 2048)
    if n < 0:
        return {"mgmt": -n}
    return cbor2.loads(bytes(ffi.buffer(out, n)))


def a_set(twin: Twin, inv_temperature: float = 2.0) -> Params:
    p = Params.identity(twin.core, twin.model_info)
    p.c.inv_temperature = int(inv_temperature * 65536)
    for c in range(twin.model_info.n_classes):
        p.c.class_bias[c] = (c - 2) * 65536 // 5
    return p.seal()


def test_info_describes_the_running_model(device, served):
    twin, _, _ = served
    info = device.info()
    assert info["model_crc"] == twin.graph.crc
    assert info["classes"] == twin.model_info.n_classes
    assert info["in"]["dims"] == list(twin.graph.input.shape)
    assert info["out"]["zp"] == twin.graph.output.zero_point
    assert info["out"]["scale"] == pytest.approx(twin.graph.output.scale, rel=1e-6)
    assert info["params_crc"] == twin.dispatcher.stats().params_crc
    assert info["features"] == twin.model_info.n_features > 0
    assert info["capture_max"] > 100


def test_a_pushed_set_is_applied_persisted_and_read_back(device, served):
    twin, _, store = served
    p = a_set(twin)
    blob = p.encode()
    assert len(blob) > PARAMS_CHUNK or len(blob) > 16  # chunked when the set is large
    result = device.push_params(blob)
    assert result == {"crc": p.crc, "persisted": True}
    assert store.read_bytes() == blob
    assert device.stats()["params_crc"] == p.crc
    assert device.get_params() == (blob, p.crc)


def test_a_refused_set_leaves_the_running_one(device, served):
    twin, _, _ = served
    good = a_set(twin)
    device.push_params(good.encode())
    wrong_model = a_set(twin, 3.0)
    wrong_model.c.model_crc ^= 1
    with pytest.raises(SmpGroupError) as refused:
        device.push_params(wrong_model.seal().encode())
    assert refused.value.rc == group.Rc.CORE_MODEL and "another model" in refused.value.text
    damaged = bytearray(a_set(twin, 3.0).encode())
    damaged[-1] ^= 0x40
    with pytest.raises(SmpGroupError) as refused:
        device.push_params(bytes(damaged))
    assert refused.value.rc in (group.Rc.CORE_CRC, group.Rc.CORE_RANGE)
    assert device.info()["params_crc"] == good.crc


def test_upload_chunks_follow_the_image_upload_rules(served):
    twin, server, _ = served
    blob = a_set(twin, 1.5).encode()
    half = len(blob) // 2
    first = {"off": 0, "len": len(blob), "data": blob[:half], "persist": False}
    assert raw_request(server, 1, True, cbor2.dumps(first)) == {"off": half}
    # A repeat, or a chunk after a gap, changes nothing: the answer says where to go on.
    assert raw_request(server, 1, True, cbor2.dumps(first))["off"] == half
    gap = {"off": half + 1, "data": blob[half + 1:]}
    assert raw_request(server, 1, True, cbor2.dumps(gap)) == {"off": half}
    other = {"off": half, "len": len(blob) + 1, "data": blob[half:]}
    assert raw_request(server, 1, True, cbor2.dumps(other))["err"]["rc"] == \
        group.Rc.OTHER_UPLOAD
    done = raw_request(server, 1, True, cbor2.dumps({"off": half, "data": blob[half:]}))
    assert done["off"] == len(blob) and done["crc"] == Params.decode(twin.core, blob).crc
    assert done["persisted"] is False
    twin.corrector.set_params(Params.identity(twin.core, twin.model_info))


@pytest.mark.parametrize(("payload", "expected"), [
    (b"\x01", {"mgmt": 3}),  # not a map
    (cbor2.dumps({"off": "zero"}), {"err": {"group": group.GROUP_ID, "rc": 2}}),
    (cbor2.dumps({}), {"err": {"group": group.GROUP_ID, "rc": 2}}),  # PARAMS needs off
    (cbor2.dumps({"off": 10 ** 6}), {"err": {"group": group.GROUP_ID, "rc": 7}}),
])
def test_malformed_requests_get_clear_codes(served, payload, expected):
    _, server, _ = served
    assert raw_request(server, 1, False, payload) == expected


def test_unknown_commands_and_ops_are_not_supported(served):
    _, server, _ = served
    assert raw_request(server, 9, False, cbor2.dumps({})) == {"mgmt": 8}
    assert raw_request(server, 0, True, cbor2.dumps({})) == {"mgmt": 8}  # INFO is read-only
    assert raw_request(server, 3, False, cbor2.dumps({})) == {"mgmt": 8}  # ADAPT write-only


def test_capture_records_the_windows_the_device_classifies(device, served):
    twin, _, _ = served
    records = device.capture(40)
    assert len(records) == 40
    assert [r.t_ms for r in records] == sorted(r.t_ms for r in records)
    n_out = twin.graph.output.nbytes
    assert all(len(r.raw) == n_out and len(r.features) == twin.model_info.n_features
               for r in records)
    # Raw outputs of a drifting sensor vary; the records are not one window repeated.
    assert len({r.raw for r in records}) > 10
    assert device.stats()["captured"] == 40
    with pytest.raises(SmpGroupError) as too_many:
        device.capture(device.info()["capture_max"] + 1)
    assert too_many.value.rc == group.Rc.TOO_LARGE


def test_capture_without_features_is_smaller(device, served):
    twin, _, _ = served
    records = device.capture(5, features=False)
    assert all(r.features == b"" and len(r.raw) == twin.graph.output.nbytes for r in records)


def test_adaptation_reset_keeps_the_set(device, served):
    twin, _, _ = served
    p = a_set(twin)
    device.push_params(p.encode(), persist=False)
    assert device.reset_adaptation() == p.crc


@settings(max_examples=300, deadline=None)
@given(cmd=st.integers(0, 6), write=st.booleans(),
       body=st.dictionaries(st.sampled_from(["off", "len", "n", "data", "persist",
                                             "features", "x"]),
                            st.one_of(st.integers(-2, 2 ** 33), st.binary(max_size=300),
                                      st.booleans(), st.text(max_size=5), st.none()),
                            max_size=6))
def test_any_request_gets_a_well_formed_answer(served, cmd, write, body):
    twin, server, _ = served
    before = twin.dispatcher.stats().params_crc
    answer = raw_request(server, cmd, write, cbor2.dumps(body))
    assert isinstance(answer, dict)
    if "err" in answer:
        assert answer["err"]["group"] == group.GROUP_ID and answer["err"]["rc"] > 0
    # Random bytes never become the running set: a set is applied only when it is valid.
    if twin.dispatcher.stats().params_crc != before:
        assert answer.get("crc") == twin.dispatcher.stats().params_crc
        twin.corrector.set_params(Params.identity(twin.core, twin.model_info))


@settings(max_examples=40, deadline=None)
@given(order=st.lists(st.integers(0, 8), min_size=1, max_size=30))
def test_chunks_in_any_order_apply_the_set_once_whole(served, order):
    """Chunks sent out of order, repeated or skipped: the set is applied only once complete,
    and then it is exactly the uploaded one."""
    twin, server, _ = served
    blob = a_set(twin, 1.25).encode()
    step = 32
    offsets = list(range(0, len(blob), step))
    applied = None
    for i in order + list(range(len(offsets))):  # then a clean pass finishes it
        off = offsets[min(i, len(offsets) - 1)]
        req = {"off": off, "data": blob[off:off + step], "persist": False}
        if off == 0:
            req["len"] = len(blob)
        answer = raw_request(server, 1, True, cbor2.dumps(req))
        if "crc" in answer:
            applied = answer["crc"]
            break
    if applied is not None:
        assert applied == Params.decode(twin.core, blob).crc == twin.dispatcher.stats().params_crc
    twin.corrector.set_params(Params.identity(twin.core, twin.model_info))
    assert applied is not None  # the clean pass always completes it
