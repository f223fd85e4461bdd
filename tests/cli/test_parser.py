"""The command line's options and help: every default shown, the commands in order of need, each task
said in words."""
import pytest

from dbmtl.cli import main


def test_every_option_help_shows_its_default():
    """`--help` of every subcommand names each option's default value (0 and a help text that happens to
    contain the word "default" included)."""
    import argparse

    from dbmtl.cli.parser import DefaultsHelpFormatter, build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = []
    for name, sub in commands.items():
        for action in sub._actions:
            default = action.default
            if not action.option_strings or default is None or default is False or default is argparse.SUPPRESS:
                continue
            text = DefaultsHelpFormatter(name)._get_help_string(action) % {"default": default}
            shown = "on" if default is True else "the bundled model" if default == "default" else str(default)
            if f"default: {shown}" not in text:
                missing.append(f"{name} {action.option_strings[-1]}: {text!r}")
    assert not missing, "\n".join(missing)


def test_help_lists_commands_in_order_of_need_one_line_each(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listing = out[out.index("commands:"):].splitlines()[2:]
    names = [line.split()[0] for line in listing]
    assert names == ["predict", "serve", "embed", "evaluate", "benchmark", "compare", "train", "prepare-corpus",
                     "calibrate", "export", "fit-readout", "curves", "learning-curve"]
    assert all(len(line.split(maxsplit=1)) == 2 and len(line) <= 80 for line in listing), listing


def test_task_help_says_what_each_task_is(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    for command in ("predict", "embed"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "membrane-bound or soluble" in out and "secondary structure in 3 or 8 states" in out
        assert "--allow-nucleotides" in out
