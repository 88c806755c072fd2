"""The machine a benchmark ran on, to print beside its figures (timings mean nothing without it)."""
import subprocess


def cpu_name() -> str:
    """`lscpu`'s model name, e.g. "AMD EPYC"; "?" where lscpu is missing or says none."""
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "?"
    return next((line.split(":", 1)[1].strip() for line in listing.splitlines() if line.startswith("Model name")), "?")
