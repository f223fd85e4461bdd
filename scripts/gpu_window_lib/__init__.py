"""The parts of scripts/gpu_window.py (pack here, run there), one module a concept."""
