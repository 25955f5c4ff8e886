# SPDX-License-Identifier: Apache-2.0
"""A parameter set on disk: params.yaml (human-readable, exact), the devicetree overlay
tinyfix.overlay (a "tinyfix,correction" node, integers only) and the Kconfig fragment
tinyfix.conf.

params.yaml holds every field as its integer `q` (what the device runs) and, for fixed-point
fields, its `real` value. The integers are authoritative: reading rebuilds the same struct,
seals it and checks the recorded params_crc, so a file round-trips to the same blob. To
change a value by hand, edit `q` (or delete `q` and give `real`), and delete params_crc.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from tinyfix import params_fields as pf
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.errors import TinyfixError

YAML_HEADER = """\
# TinyFix parameter set (format: docs/params-format.md). `q` is the integer the device runs;
# `real` = q / 65536 (Q16.16), / 32768 (Q15), / 256 (Q8.8 and score8). To change a value,
# edit q (or delete q and give real) and delete params_crc.
"""
GROUP_ORDER = ("vote", "anomaly", "input", "adapt", "monitor")
DEVICE_DEFAULTS = {"CONFIG_TINYFIX_MAX_VOTE_FRAMES": 16, "CONFIG_TINYFIX_MAX_ANOMALY_WINDOW": 64,
                   "CONFIG_TINYFIX_MAX_CHANNELS": 8}
STAGE_ADAPT = 0x40
STAGE_VOTE = 0x08
STAGE_ANOMALY = 0x10
STAGE_INPUT = 0x20


# ---- params.yaml ------------------------------------------------------------------------


def _entry(fmt: pf.Format, q: int) -> Any:
    if fmt.is_real:
        return {"real": fmt.real(q), "q": q}
    if fmt.names:
        return {"name": fmt.names[q] if 0 <= q < len(fmt.names) else "unknown", "q": q}
    if fmt.bits:
        return {"bits": pf.bit_names(fmt, q), "q": q}
    return q


def params_to_dict(params: Params, class_names: list[str] | tuple[str, ...] | None = None
                   ) -> dict[str, Any]:
    c = params.c
    n = int(c.n_classes)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise TinyfixError(f"{len(names)} class names for {n} classes")
    out: dict[str, Any] = {
        "format_version": int(c.format_version),
        "model_crc": f"0x{int(c.model_crc):08x}",
        "params_crc": f"0x{int(c.crc):08x}",
        "n_classes": n,
    }
    classes: list[dict[str, Any]] = [{"name": name} for name in names]
    channels: list[dict[str, Any]] = [{} for _ in range(int(c.n_channels))]
    groups: dict[str, dict[str, Any]] = {g: {} for g in (*GROUP_ORDER, "head")}
    for field in pf.FIELDS:
        value = pf.get(c, field)
        if field.per == "class":
            for k, v in enumerate(value):  # type: ignore[arg-type]
                classes[k][field.key] = _entry(field.fmt, v)
        elif field.per == "channel":
            for k, v in enumerate(value):  # type: ignore[arg-type]
                channels[k][field.key] = _entry(field.fmt, v)
        elif field.per.startswith("head"):
            if int(c.n_features):
                groups["head"][field.key] = value
        elif field.group:
            groups[field.group][field.key] = _entry(field.fmt, value)  # type: ignore[arg-type]
        else:
            out[field.key] = _entry(field.fmt, value)  # type: ignore[arg-type]
    out["classes"] = classes
    for group in GROUP_ORDER:
        out[group] = groups[group]
    out["input"]["channels"] = channels
    if int(c.n_features):
        head = groups["head"]
        rows, per_row = pf.head_shape(c)
        out["head"] = {
            "multiplier": head["multiplier"],
            "shift": head["shift"],
            # The scales the multipliers and shifts stand for (for reading): requantization
            # of a whole layer, accumulator to Q16.16 logit of a residual.
            "scale": [m * 2.0 ** (s - 31)
                      for m, s in zip(head["multiplier"], head["shift"], strict=True)],
            "bias": head["bias"],
            # A residual's feature indices (absent for a whole layer).
            **({"columns": pf.columns_of(head["columns"])} if int(c.head_columns) else {}),
            "weights": [head["weights"][k * per_row:(k + 1) * per_row] for k in range(rows)],
        }
    return out


def params_to_yaml(params: Params, class_names: list[str] | tuple[str, ...] | None = None
                   ) -> str:
    body = yaml.safe_dump(params_to_dict(params, class_names), sort_keys=False,
                          default_flow_style=None, width=100)
    return YAML_HEADER + body


def _q_of(fmt: pf.Format, value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise TinyfixError(f"{where}: expected a number, got {value}")
    if isinstance(value, int):
        return value
    if not isinstance(value, dict):
        raise TinyfixError(f"{where}: expected an integer or a mapping with `q`, got {value!r}")
    if "q" in value:
        q = value["q"]
        if isinstance(q, bool) or not isinstance(q, int):
            raise TinyfixError(f"{where}: q must be an integer, got {q!r}")
        real = value.get("real")
        if fmt.is_real and real is not None and abs(float(real) * fmt.one - q) > 0.5 + 1e-9:
            raise TinyfixError(f"{where}: real {real} and q {q} disagree (q means "
                               f"{fmt.real(q)}); edit one and delete the other")
        return q
    if fmt.is_real and "real" in value:
        real = float(value["real"])
        if not math.isfinite(real):
            raise TinyfixError(f"{where}: real must be finite, got {real}")
        return int(math.copysign(math.floor(abs(real) * fmt.one + 0.5), real))
    if fmt.names and "name" in value:
        if value["name"] not in fmt.names:
            raise TinyfixError(f"{where}: {value['name']!r} is not one of {list(fmt.names)}")
        return fmt.names.index(value["name"])
    if fmt.bits and "bits" in value:
        unknown = set(value["bits"]) - set(fmt.bits)
        if unknown:
            raise TinyfixError(f"{where}: unknown bit(s) {sorted(unknown)}")
        return sum(1 << fmt.bits.index(b) for b in set(value["bits"]))
    raise TinyfixError(f"{where}: needs `q`")


def _hex(value: Any, where: str) -> int:
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise TinyfixError(f"{where}: expected a hex number such as 0x1a2b3c4d") from None


def _section(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise TinyfixError(f"{where}: missing `{key}`")
    return d[key]


def params_from_dict(d: dict[str, Any], core: Core, source: str = "params.yaml") -> Params:
    if not isinstance(d, dict):
        raise TinyfixError(f"{source}: not a parameter set (expected a mapping)")
    ffi = core.ffi
    c = ffi.new("struct tinyfix_params *")
    version = _section(d, "format_version", source)
    if version != int(core.lib.TINYFIX_PARAMS_VERSION):
        raise TinyfixError(f"{source}: format version {version} not supported "
                           f"(this tool writes {int(core.lib.TINYFIX_PARAMS_VERSION)})")
    c.format_version = version
    c.model_crc = _hex(_section(d, "model_crc", source), f"{source}: model_crc")
    classes = _section(d, "classes", source)
    n = int(_section(d, "n_classes", source))
    if not isinstance(classes, list) or len(classes) != n:
        raise TinyfixError(f"{source}: `classes` must list {n} classes")
    c.n_classes = n
    top = {f.key: f for f in pf.FIELDS if not f.group}
    for key in ("n_channels", "n_features"):
        pf.put(c, top[key], _q_of(pf.INT, _section(d, key, source), f"{source}: {key}"))
    for key in ("head_rows", "head_columns"):  # absent: a whole layer, one row per class
        default = n if key == "head_rows" and int(c.n_features) else 0
        pf.put(c, top[key], _q_of(pf.INT, d.get(key, default), f"{source}: {key}"))
    n_channels, n_features = int(c.n_channels), int(c.n_features)
    rows, per_row = pf.head_shape(c)
    channels = _section(_section(d, "input", source), "channels", f"{source}: input")
    if not isinstance(channels, list) or len(channels) != n_channels:
        raise TinyfixError(f"{source}: input.channels must list {n_channels} channels")
    for field in pf.FIELDS:
        where = f"{source}: {field.group + '.' if field.group else ''}{field.key}"
        if field.per == "class":
            value: int | list[int] = [
                _q_of(field.fmt, _section(cls, field.key, f"{source}: classes[{k}]"),
                      f"{source}: classes[{k}].{field.key}") for k, cls in enumerate(classes)]
        elif field.per == "channel":
            value = [_q_of(field.fmt, _section(ch, field.key, f"{source}: channels[{k}]"),
                           f"{source}: input.channels[{k}].{field.key}")
                     for k, ch in enumerate(channels)]
        elif field.per.startswith("head"):
            if not n_features or (field.per == "head_bitmap" and not int(c.head_columns)):
                continue
            raw = _section(_section(d, "head", source), field.key, f"{source}: head")
            if field.per == "head_weights":
                if len(raw) != rows or any(len(row) != per_row for row in raw):
                    raise TinyfixError(f"{where}: must be {rows} rows of {per_row} weights")
                raw = [w for row in raw for w in row]
            if field.per == "head_bitmap":
                raw = pf.bitmap_of([int(v) for v in raw], n_features)
            value = [int(v) for v in raw] if isinstance(raw, list) else int(raw)
        elif field.group:
            value = _q_of(field.fmt, _section(_section(d, field.group, source), field.key,
                                              f"{source}: {field.group}"), where)
        else:
            value = _q_of(field.fmt, _section(d, field.key, source), where)
        pf.put(c, field, value)
    params = Params(core, c).seal()
    if "params_crc" in d:
        recorded = _hex(d["params_crc"], f"{source}: params_crc")
        if recorded != params.crc:
            raise TinyfixError(
                f"{source}: params_crc 0x{recorded:08x} does not match the values "
                f"(0x{params.crc:08x}): the file was edited or damaged; delete params_crc "
                "to accept edited values")
    return params


def _validated(params: Params, model: ModelInfo | None, source: str) -> Params:
    if model is not None:
        err = params.validate(model)
        if err:
            text = params.core.ffi.string(params.core.lib.tinyfix_strerror(err)).decode()
            raise TinyfixError(f"{source}: refused for this model: {text} ({err})")
    return params


def params_from_yaml(text: str, core: Core, model: ModelInfo | None = None,
                     source: str = "params.yaml") -> Params:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TinyfixError(f"{source}: not valid YAML ({exc})") from None
    return _validated(params_from_dict(data, core, source), model, source)


def write_params_yaml(path: str | Path, params: Params,
                      class_names: list[str] | tuple[str, ...] | None = None) -> None:
    Path(path).write_text(params_to_yaml(params, class_names))


def read_params_yaml(path: str | Path, core: Core, model: ModelInfo | None = None) -> Params:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TinyfixError(f"{path}: cannot read ({exc.strerror})") from None
    return params_from_yaml(text, core, model, str(path))


# ---- Devicetree overlay -----------------------------------------------------------------

NODE_LABEL = "tinyfix_params"
NODE_NAME = "tinyfix-params"
CELLS_PER_LINE = 8
BYTES_PER_LINE = 16


def _cell(v: int) -> str:
    return f"({v})" if v < 0 else str(v)


def _wrapped(items: list[str], per_line: int, indent: str) -> str:
    lines = [" ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return f"\n{indent}".join(lines)


def _property(field: pf.Field, value: int | list[int], indent: str) -> str:
    cont = indent + " " * (len(field.dt) + 4)
    if field.path in ("class_flags", "head.weights", "head.columns"):
        items = [f"{v & 0xFF:02x}" for v in value]  # type: ignore[union-attr]
        return f"{indent}{field.dt} = [{_wrapped(items, BYTES_PER_LINE, cont)}];"
    if isinstance(value, list):
        items = [_cell(v) for v in value]
        return f"{indent}{field.dt} = <{_wrapped(items, CELLS_PER_LINE, cont)}>;"
    text = f"0x{value:02x}" if field.fmt.bits else _cell(value)
    return f"{indent}{field.dt} = <{text}>;"


def _comment(field: pf.Field, value: int | list[int]) -> str:
    if field.fmt.is_real:
        reals = [field.fmt.real(v) for v in (value if isinstance(value, list) else [value])]
        return f"/* {field.fmt.name}: " + " ".join(f"{r:.6g}" for r in reals) + " */"
    if field.fmt.names and isinstance(value, int) and 0 <= value < len(field.fmt.names):
        return f"/* {field.fmt.names[value]} */"
    if field.fmt.bits and isinstance(value, int):
        return "/* " + (" | ".join(pf.bit_names(field.fmt, value)) or "none") + " */"
    return ""


def overlay_text(params: Params, class_names: list[str] | tuple[str, ...] | None = None) -> str:
    c = params.c
    indent = "\t\t"
    lines = [
        "/*",
        f" * TinyFix parameters for model 0x{int(c.model_crc):08x}, params CRC "
        f"0x{params.crc:08x}.",
        " * Written by tinyfix; values are integers in the formats of",
        " * modules/tinyfix/dts/bindings/tinyfix,correction.yaml.",
    ]
    if class_names is not None:
        lines.append(" * Classes: " + ", ".join(class_names))
    lines += [" */", "", "/ {", f"\t{NODE_LABEL}: {NODE_NAME} {{",
              f'{indent}compatible = "tinyfix,correction";',
              f"{indent}model-crc = <0x{int(c.model_crc):08x}>;"]
    for field in pf.FIELDS:
        n = pf.count(c, field)
        head_count = field.path in ("head_rows", "head_columns")
        if n == 0 or ((field.per == "head" or head_count) and not int(c.n_features)):
            continue
        value = pf.get(c, field)
        comment = _comment(field, value)
        if comment and isinstance(value, list):
            lines.append(f"{indent}{comment}")
            comment = ""
        lines.append(_property(field, value, indent) + (f"\t{comment}" if comment else ""))
    lines += ["\t};", "};", ""]
    return "\n".join(lines)


def write_overlay(path: str | Path, params: Params,
                  class_names: list[str] | tuple[str, ...] | None = None) -> None:
    Path(path).write_text(overlay_text(params, class_names))


_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_PROPERTY = re.compile(r"([a-z0-9-]+)\s*=\s*(<[^>]*>|\[[^\]]*\]|\"[^\"]*\")\s*;")


def _cells(text: str, where: str) -> list[int]:
    values = []
    for token in re.findall(r"\(\s*-?\s*(?:0x[0-9a-fA-F]+|\d+)\s*\)|0x[0-9a-fA-F]+|\d+", text):
        try:
            values.append(int(token.strip("() ").replace(" ", ""), 0))
        except ValueError:
            raise TinyfixError(f"{where}: bad cell {token!r}") from None
    return values


def params_from_overlay(text: str, core: Core, source: str = "tinyfix.overlay") -> Params:
    """The parameter set an overlay written by overlay_text() describes (every property
    present, as that writer emits them), sealed."""
    body = _COMMENT.sub("", text)
    node = re.search(r"tinyfix-params\s*\{(.*?)\n\s*\};", body, re.S)
    if node is None or '"tinyfix,correction"' not in node.group(1):
        raise TinyfixError(f"{source}: no tinyfix,correction node")
    props = {m.group(1): m.group(2) for m in _PROPERTY.finditer(node.group(1))}
    c = core.ffi.new("struct tinyfix_params *")
    c.format_version = int(core.lib.TINYFIX_PARAMS_VERSION)
    for required in ("model-crc", "class-scale", "n-channels", "n-features"):
        if required not in props:
            raise TinyfixError(f"{source}: missing property {required}")
    c.model_crc = _cells(props["model-crc"], source)[0]
    c.n_classes = len(_cells(props["class-scale"], source))
    # Counts first: they size the arrays that follow.
    for name in ("n-features", "head-rows", "head-columns"):
        if name in props:
            pf.put(c, pf.BY_DT[name], _cells(props[name], f"{source}: {name}")[0])
    for name, raw in props.items():
        field = pf.BY_DT.get(name)
        if field is None:
            continue
        if raw.startswith("["):
            values = [int(b, 16) for b in raw[1:-1].split()]
            if field.path == "head.weights":
                values = [v - 256 if v > 127 else v for v in values]
        else:
            values = _cells(raw, f"{source}: {name}")
        pf.put(c, field, values if pf.count(c, field) is not None else values[0])
    return Params(core, c).seal()


# ---- Kconfig fragment ---------------------------------------------------------------------


def conf_text(params: Params, vote_frames: int | None = None) -> str:
    """CONFIG_TINYFIX=y and the sizes this set needs; sizes at their default are left out
    except the class count, which is always sized to the model."""
    c = params.c
    flags = int(c.flags)
    sizes = {"CONFIG_TINYFIX_MAX_CLASSES": int(c.n_classes)}
    if flags & STAGE_VOTE:
        sizes["CONFIG_TINYFIX_MAX_VOTE_FRAMES"] = max(int(c.vote.min_count), vote_frames or 0)
    sizes["CONFIG_TINYFIX_MAX_ANOMALY_WINDOW"] = int(c.anomaly.window)
    if flags & STAGE_INPUT:
        sizes["CONFIG_TINYFIX_MAX_CHANNELS"] = int(c.n_channels)
    lines = [f"# TinyFix for model 0x{int(c.model_crc):08x}, params CRC 0x{params.crc:08x}",
             "CONFIG_TINYFIX=y"]
    for key, value in sizes.items():
        default = DEVICE_DEFAULTS.get(key)
        if default is None or value > default:
            lines.append(f"{key}={value}")
    if int(c.n_features):
        lines.append(f"CONFIG_TINYFIX_MAX_FEATURES={int(c.n_features)}")
        rows, per_row = pf.head_shape(c)
        if int(c.head_columns):  # a residual needs only its columns' weights
            lines.append(f"CONFIG_TINYFIX_MAX_HEAD_WEIGHTS={rows * per_row}")
    if flags & STAGE_ADAPT:
        lines.append("CONFIG_TINYFIX_ADAPT=y")
    return "\n".join(lines) + "\n"


def write_conf(path: str | Path, params: Params, vote_frames: int | None = None) -> None:
    Path(path).write_text(conf_text(params, vote_frames))


def write_outputs(out_dir: str | Path, params: Params,
                  class_names: list[str] | tuple[str, ...] | None = None,
                  vote_frames: int | None = None) -> list[Path]:
    """params.yaml, tinyfix.overlay and tinyfix.conf in out_dir; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "params.yaml", out / "tinyfix.overlay", out / "tinyfix.conf"]
    write_params_yaml(paths[0], params, class_names)
    write_overlay(paths[1], params, class_names)
    write_conf(paths[2], params, vote_frames)
    return paths
