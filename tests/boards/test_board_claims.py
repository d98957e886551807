"""The board checks as plain functions: which claims of a profile a board's answer contradicts, and
results that are not of the bundle sent (another model, another device) refused."""

from pipeline.boards.claims import contradictions, foreign_results
from pipeline.deploy.profiles import load_profile

PI = load_profile("raspberry-pi-4")  # cortex-a72, 4 cores, no dot product, 4096 MB, onnxruntime + ncnn + executorch


def board(**changes) -> dict:
    """A Pi 4 answering as its profile says."""
    return {"machine": "aarch64", "cores": 4, "cpu": "Cortex-A72", "int8_dot_product": False, "memory_mb": 3794, "numpy": "1.26.4",
            "runtimes": {"onnxruntime": "1.20.1", "ncnn": "1.0", "executorch": "1.5.1", "openvino": None}, **changes}


def test_a_board_as_its_profile_says_contradicts_nothing():
    assert contradictions(board(), PI) == []
    assert contradictions(board(machine="armv7l", memory_mb=4096 * 1.25, cpu=""), PI) == [], "within a quarter of the RAM; no CPU name: no flag claim"
    assert contradictions(board(memory_mb=4096 * 0.75), PI) == []
    assert contradictions(board(machine="", cores=None, memory_mb=None), PI) == [], "what the board could not say contradicts nothing"
    silent = board()
    del silent["machine"]
    assert contradictions(silent, PI) == []


def test_each_claim_the_board_contradicts_is_named_with_both_sides():
    assert contradictions(board(machine="x86_64"), PI) == ["cpu: the profile says cortex-a72 (arm), the board is x86_64"]
    assert contradictions(board(machine="AArch64"), PI) == [], "the machine name is compared in lower case"
    assert contradictions(board(cores=2), PI) == ["cores: the profile says 4, the board has 2"]
    assert contradictions(board(int8_dot_product=True), PI) == ["int8_dot_product: the profile says false, the board's CPU flags say true"]
    assert contradictions(board(memory_mb=5121), PI) == ["memory_mb: the profile says 4096, the board has 5121"]
    assert contradictions(board(memory_mb=3071), PI) == ["memory_mb: the profile says 4096, the board has 3071"]
    assert contradictions(board(numpy=None), PI) == ["numpy does not import on the board: the bundle's script needs it (pip install numpy)"]
    assert contradictions(board(runtimes={"onnxruntime": "1.20.1", "ncnn": None}), PI) == [
        "runtimes: the profile lists ncnn, which does not import on the board (pip install ncnn)",
        "runtimes: the profile lists executorch, which does not import on the board (pip install executorch)"]
    assert contradictions(board(runtimes=None), PI)[0].startswith("runtimes: the profile lists onnxruntime")
    n100 = load_profile("intel-n100")
    assert contradictions(board(machine="x86_64", cores=n100.cores, int8_dot_product=True, memory_mb=n100.memory_mb,
                                runtimes={"onnxruntime": "1", "openvino": "2026"}), n100) == []
    assert contradictions(board(machine="aarch64", cores=n100.cores, int8_dot_product=True, memory_mb=n100.memory_mb,
                                runtimes={"onnxruntime": "1", "openvino": "2026"}), n100) == ["cpu: the profile says x86-64 (x86), the board is aarch64"]


def test_results_of_another_model_or_device_are_refused():
    manifest = {"model": {"sha256": "a" * 64}}
    assert foreign_results({"model_sha256": "a" * 64, "device": "raspberry-pi-4"}, manifest, "raspberry-pi-4") is None
    assert foreign_results({"model_sha256": "b" * 64, "device": "raspberry-pi-4"}, manifest, "raspberry-pi-4") == \
        f"the results are of model {'b' * 16}…, not of the bundle's {'a' * 16}…"
    assert foreign_results({"device": "raspberry-pi-4"}, manifest, "raspberry-pi-4") == f"the results are of model None…, not of the bundle's {'a' * 16}…"
    assert foreign_results({"model_sha256": "a" * 64, "device": "intel-n100"}, manifest, "raspberry-pi-4") == \
        "the results are of device 'intel-n100', not 'raspberry-pi-4'"
    assert foreign_results({"model_sha256": "a" * 64}, manifest, "raspberry-pi-4") == "the results are of device None, not 'raspberry-pi-4'"
