"""Every private name of faust and aiokafka that streamproc uses exists on the installed versions.

The names are confined to :mod:`streamproc.service.faust_compat` and
:mod:`streamproc.compat.aiokafka`; an upgrade that removes one fails here, naming it, instead of
in a worker under load.
"""

from __future__ import annotations

import importlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from streamproc.compat import aiokafka as aiokafka_compat
from streamproc.config import Settings
from streamproc.service import faust_compat
from streamproc.service.app import create_app

MODULE_NAMES = [("faust-streaming", faust_compat, *n) for n in faust_compat.PRIVATE] + [
    ("aiokafka", aiokafka_compat, *n) for n in aiokafka_compat.PRIVATE
]


@pytest.mark.parametrize(
    ("dist", "compat", "module", "name"),
    MODULE_NAMES,
    ids=[f"{m}.{n}" for _, _, m, n in MODULE_NAMES],
)
def test_each_private_module_attribute_exists(
    dist: str, compat: object, module: str, name: str
) -> None:
    where = importlib.import_module(module)
    assert hasattr(where, name), (
        f"{dist} {version(dist)} has no {module}.{name}, which {compat.__name__} uses "  # type: ignore[attr-defined]
        f"(see its docstring): adapt that module, or keep {dist} below this version"
    )


def test_each_private_consumer_attribute_exists_and_the_ack_bookkeeping_is_recognised(
    tmp_path: Path,
) -> None:
    w = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1")
    consumer = w.app.consumer
    missing = [n for n in faust_compat.PRIVATE_CONSUMER if not hasattr(consumer, n)]
    assert not missing, (
        f"faust-streaming {faust_compat.FAUST_VERSION}: its consumer has no {', '.join(missing)}, "
        "which streamproc/service/faust_compat.py uses: adapt that module, or keep "
        "faust-streaming below this version"
    )
    assert isinstance(faust_compat.active_partitions(consumer), set)
    assert faust_compat.supported(consumer), (
        f"faust-streaming {faust_compat.FAUST_VERSION} is not one faust_compat was checked on "
        f"({faust_compat.SUPPORTED}): check its Consumer._acked bookkeeping, then add it"
    )
    assert hasattr(w.app.web, "blueprints"), "faust's Web has no blueprints (without_builtin_views)"
    assert hasattr(w.app.producer, "_producer"), (
        "faust's producer has no _producer (the aiokafka producer track_written_topics reaches)"
    )


def test_the_client_names_fetched_ahead_reads_exist(tmp_path: Path) -> None:
    """faust's consumer thread, aiokafka's consumer and fetcher: the records fetched ahead."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.consumer.fetcher import Fetcher

    thread = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app.consumer._thread
    ensure, fetcher, records = faust_compat.PRIVATE_CLIENT
    assert callable(getattr(thread, ensure, None)), f"faust's consumer thread has no {ensure}"
    # Instance attributes, set when aiokafka's consumer starts and its fetcher is made.
    assert f"self.{fetcher} = " in inspect.getsource(AIOKafkaConsumer), f"aiokafka: no {fetcher}"
    assert f"self.{records} = " in inspect.getsource(Fetcher.__init__), f"aiokafka: no {records}"


def test_the_public_names_the_checkpoints_rely_on_exist(tmp_path: Path) -> None:
    from faust.types import Message

    app = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app
    for owner, name in [
        (Message, "incref"),
        (Message, "ack"),
        (app, "consumer_generation_id"),
        (app.flow_control, "is_active"),
        (app.sensors, "on_message_out"),
        (app.sensors, "on_table_set"),
    ]:
        assert hasattr(owner, name), f"faust-streaming {faust_compat.FAUST_VERSION}: no {name}"


@pytest.mark.parametrize("compat", [faust_compat, aiokafka_compat], ids=lambda m: m.__name__)
def test_every_private_name_a_compat_module_reads_is_listed(compat: object) -> None:
    """The lists the tests above check are the names the code uses, not a stale copy."""
    code = inspect.getsource(compat)  # type: ignore[arg-type]
    code = code[code.index('"""', 3) + 3 :]  # after the module docstring (it names them too)
    used = set(re.findall(r'getattr\(\w+, "(_[a-z]\w*)"', code))
    used |= {m for m in re.findall(r"\b(?!self\b)\w+\.(_[a-z]\w*)", code)}
    # Every name imported from a submodule of faust or aiokafka (their private modules included).
    imported = re.findall(r"^from ((?:faust|aiokafka)\.[\w.]+) import (\w+)$", code, re.M)
    assert imported, "no imports found: the check below would pass on anything"
    assert set(imported) <= set(getattr(compat, "PRIVATE", ())), (
        f"{compat.__name__} imports {sorted(set(imported))} but lists "  # type: ignore[attr-defined]
        f"{sorted(getattr(compat, 'PRIVATE', ()))}"
    )
    listed = (
        {n for _, n in getattr(compat, "PRIVATE", ())}
        | set(getattr(compat, "PRIVATE_CONSUMER", ()))
        | set(getattr(compat, "PRIVATE_CLIENT", ()))
    )
    assert used - listed == set(), f"{compat.__name__} uses private names it does not list"  # type: ignore[attr-defined]
