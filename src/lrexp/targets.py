"""``_target_`` nodes: import a dotted path and check keyword arguments, each failure as one
line naming the key.

Hydra's own ``instantiate`` reports an import failure as a multi-line chained traceback
(hydra#1863) and a refused argument only once the constructor runs. These helpers find both
first, with the import error's own message, so :mod:`lrexp.config.parts` can build a user's part
and a bad ``_target_`` costs one line. Plain Python: schedules and optimizers use them too.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lrexp.errors import ConfigError

#: Hydra's instantiation keys: they steer how a node is built and are never arguments
HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


def locate(path: Any, key: str) -> Any:
    """The object ``path`` (``package.module.Name``) names, or a ConfigError for ``key``
    carrying the import error's own message."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(key, f"must be a dotted path such as mypkg.models.Net, got {path!r}")
    parts = path.strip().split(".")
    module, error = None, None
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as err:
            error = err
            if err.name is None or not ".".join(parts[:cut]).startswith(err.name):
                break  # the module exists but imports something missing: that is the cause
            continue
        except Exception as err:  # the module itself fails to import
            raise ConfigError(key, f"cannot import {path!r}: {type(err).__name__}: {err}") from None
        found: Any = module
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                raise ConfigError(
                    key,
                    f"cannot import {path!r}: module {found.__name__!r} has no attribute "
                    f"{attribute!r}"
                    if inspect.ismodule(found)
                    else f"cannot import {path!r}: {found!r} has no attribute {attribute!r}",
                )
            found = getattr(found, attribute)
        return found
    hint = ""
    if isinstance(error, ModuleNotFoundError) and error.name == parts[0]:
        hint = (
            f"; make {parts[0]!r} importable: pip install -e <its project folder>, or "
            f"PYTHONPATH=<the folder that holds {parts[0]}>"
        )
    raise ConfigError(key, f"cannot import {path!r}: {error}{hint}")


def target_of(node: Mapping[str, Any], group: str) -> Any:
    """The class or function ``node['_target_']`` names (``group`` names the node)."""
    return locate(node.get("_target_"), f"{group}._target_")


def accepted(target: Callable[..., Any]) -> tuple[set[str], bool]:
    """The keyword names ``target`` takes, and whether it also takes ``**kwargs``."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return set(), True
    names = {
        name
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    extra = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    return names, extra


def check_arguments(
    target: Callable[..., Any], arguments: Iterable[str], group: str, offered: Iterable[str] = ()
) -> None:
    """Refuse, naming ``group.<key>``, any argument ``target`` does not take, or a required
    argument that neither the config nor lrexp (``offered``) gives."""
    names, extra = accepted(target)
    label = getattr(target, "__qualname__", repr(target))
    given = set(arguments)
    if not extra and names:
        for key in sorted(given):
            if key not in names:
                raise ConfigError(
                    f"{group}.{key}",
                    f"{label} takes no argument {key!r}; it takes {', '.join(sorted(names))}",
                )
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return
    supplied = given | (set(offered) & names if not extra else set(offered))
    for name, p in signature.parameters.items():
        required = p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if required and name not in supplied and name != "self":
            raise ConfigError(f"{group}.{name}", f"{label} needs {name!r}; set {group}.{name}")


def offered_to(target: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The values lrexp offers (``input_shape``, ``num_classes``) that ``target`` takes by
    name; a ``**kwargs`` constructor takes none of them unasked."""
    names, _ = accepted(target)
    return {k: v for k, v in offered.items() if k in names}


def arguments_of(node: Mapping[str, Any], reserved: Iterable[str] = ()) -> dict[str, Any]:
    """``node``'s constructor arguments: every key but Hydra's and ``reserved`` ones."""
    skip = set(HYDRA_KEYS) | set(reserved)
    return {k: v for k, v in node.items() if k not in skip}
