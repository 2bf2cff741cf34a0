"""The public API a notebook user reads: a function for every command, documented."""

import importlib
import inspect

import lepidopt
from lepidopt.cli import COMMANDS

FUNCTIONS_OF_COMMANDS = {
    "search": ["search"],
    "worker": ["worker"],
    "recover": ["recover"],
    "storage-proxy": ["storage_proxy"],
    "status": ["status", "format_status"],
    "export": ["export_best"],
    "report": ["report_study", "report_embeddings"],
    "dashboard": ["serve_dashboard"],
    "predict": ["load_model", "items_of", "write_predictions"],
    "evaluate": ["load_model"],
    "embed": ["load_model", "items_of", "write_embeddings"],
    "demo": ["run_demo"],
    "data": ["scan_source", "format_scan", "make_demo_collection"],
    "spaces": ["builtin_space_names", "load_space", "load_space_file"],
}


CANNOT_FAIL = {"format_scan", "builtin_space_names"}


def test_every_command_has_its_functions_in_the_public_api():
    assert sorted(COMMANDS) == sorted(FUNCTIONS_OF_COMMANDS)
    for names in FUNCTIONS_OF_COMMANDS.values():
        for name in names:
            assert name in lepidopt.__all__
            assert inspect.isfunction(getattr(lepidopt, name)), name


def test_every_public_name_resolves_and_search_is_the_function():
    for name in lepidopt.__all__:
        getattr(lepidopt, name)
    assert lepidopt.search is importlib.import_module("lepidopt.api").search
    assert inspect.isfunction(lepidopt.search)


def test_the_functions_behind_the_commands_document_every_argument_what_they_return_and_raise():
    for names in FUNCTIONS_OF_COMMANDS.values():
        for name in names:
            func = getattr(lepidopt, name)
            doc = inspect.getdoc(func) or ""
            for parameter in inspect.signature(func).parameters:
                assert f"    {parameter}:" in doc, f"{name}: argument {parameter} is not documented"
            assert "Raises:" in doc or name in CANNOT_FAIL, name
            assert "Returns:" in doc or inspect.signature(func).return_annotation in (None, "None"), name
