"""What the benchmark says about the machine it ran on."""
from dbmtl.benchmark.machine import machine_info, machine_line


def test_the_report_says_when_onednn_was_limited_to_older_instructions(monkeypatch):
    """A run with ONEDNN_MAX_CPU_ISA (how bf16 is timed as on a CPU without bf16 dot products) says so."""
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    plain = machine_info("cpu", 1)
    assert plain["onednn_max_cpu_isa"] is None and "oneDNN" not in machine_line(plain)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    capped = machine_info("cpu", 1)
    assert "oneDNN limited to AVX512_CORE" in machine_line(capped)
