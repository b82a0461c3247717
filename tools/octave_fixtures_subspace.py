"""Golden fixture of HySime: the reference `estNoise.m` and `hysime.m` run under GNU Octave.

Not part of the package, and `make test` does not run it: it needs GNU Octave (7.x; no
package is used) and a checkout of the public repository magamig/hif-benchmarking, whose
``methods/CSTF/sisal/`` folder ships Nascimento and Bioucas-Dias's ``estNoise.m`` and
``hysime.m``::

    python tools/octave_fixtures_subspace.py /path/to/hif-benchmarking [out_dir]

(or set ``HIF_BENCHMARKING``). It reads the shared input pair
``tests/fixtures/baselines/inputs.npz`` (``tools/baseline_fixture_inputs.py``) and runs, on
its LR-HSI (16 x 16 pixels, 40 bands) and on a noisy copy of it,

    [w, Rw] = estNoise (y, "additive", "off");  [kf, Ek] = hysime (y, w, Rw, "off");

with ``y`` the ``(L, N)`` matrix of the LR-HSI pixels (column ``j`` is pixel ``j`` in
row-major order, ``lr_hsi.reshape(-1, L).T``). ``"off"`` only silences the progress prints.
The noisy copy (``noisy_lr_hsi``) adds white Gaussian noise at 25 dB per band (noise power =
mean square of the band / 10^2.5, as ``keras_hsifusion.data.degrade``) drawn by
``numpy.random.default_rng(20260421).standard_normal``, so that HySime keeps a few
dimensions, not most of them.

It writes ``hysime.npz`` next to the inputs: ``lr_hsi_noisy`` (float32), and for ``case`` in
``clean``, ``noisy``: ``{case}_noise`` (``w``, float64 ``(L, N)``), ``{case}_noise_corr``
(``Rw``, ``(L, L)``), ``{case}_k`` (``kf``) and ``{case}_basis`` (``Ek``, ``(L, kf)``, each
column signed so that its largest-magnitude entry is positive: the sign of an ``svd``
vector is arbitrary; the port uses the same convention), and ``note``.

One change is made to the reference, in a copy in a temporary folder: ``hysime.m`` ends by
plotting its cost curve (``indice=1:50; figure; ... semilogy(indice, cost_F_sort(indice),
...)``), which fails for fewer than 50 bands and needs a display; those plotting lines are
removed (the script checks that nothing else is). ``estNoise.m`` is used as it is.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, os.pardir, "tests", "fixtures", "baselines")
SISAL = os.path.join("methods", "CSTF", "sisal")
NOISE_SEED, NOISE_SNR_DB = 20260421, 25.0
# The plotting block at the end of hysime.m: from its first line to its last.
PLOT_FIRST, PLOT_LAST = b"indice=1:50;", b"legend("
PLOT_WORDS = (b"indice", b"figure", b"set(gca", b"semilogy", b"xlabel", b"legend")

DRIVER = r"""warning ("off", "all");
load ("{inputs}");
[w, Rw] = estNoise (y, "additive", "off");
[kf, Ek] = hysime (y, w, Rw, "off");
if (kf > 0)
  [~, idx] = max (abs (Ek), [], 1);
  s = sign (Ek(sub2ind (size (Ek), idx, 1:kf)));
  s(s == 0) = 1;
  Ek = Ek .* s;
end
save ("-v7", "{output}", "w", "Rw", "kf", "Ek");
"""


def noisy_lr_hsi(lr_hsi):
    """The fixture's noisy LR-HSI: white Gaussian noise at 25 dB per band (deterministic)."""
    x = np.asarray(lr_hsi, dtype=np.float64)
    power = np.mean(x * x, axis=(0, 1), keepdims=True)
    std = np.sqrt(power / 10.0 ** (NOISE_SNR_DB / 10.0))
    noise = np.random.default_rng(NOISE_SEED).standard_normal(x.shape)
    return (x + std * noise).astype(np.float32)


def bands_by_pixels(lr_hsi):
    """`(L, N)` float64 matrix of an `(h, w, L)` image, pixels in row-major order."""
    x = np.asarray(lr_hsi, dtype=np.float64)
    return np.ascontiguousarray(x.reshape(-1, x.shape[-1]).T)


def patched_hysime(source):
    """hysime.m without its final plotting lines (bytes in, bytes out)."""
    start = source.index(PLOT_FIRST)
    end = source.index(b"\n", source.index(PLOT_LAST, start)) + 1
    removed = source[start:end]
    for line in removed.splitlines():
        line = line.strip()
        if line and not any(word in line for word in PLOT_WORDS):
            raise RuntimeError(f"hysime.m: unexpected line in the plotting block: {line!r}")
    return source[:start] + source[end:], removed


def _commit(reference):
    try:
        out = subprocess.run(
            ["git", "-C", reference, "rev-parse", "HEAD"], capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _octave_version():
    out = subprocess.run(["octave", "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0].strip()


def run_case(name, y, code_dir, tmp):
    """estNoise + hysime under Octave on the `(L, N)` matrix `y`; returns the outputs."""
    from scipy import io

    in_mat = os.path.join(tmp, f"{name}_in.mat")
    out_mat = os.path.join(tmp, f"{name}_out.mat")
    io.savemat(in_mat, {"y": y})
    script = f'addpath ("{code_dir}");\n' + DRIVER.format(inputs=in_mat, output=out_mat)
    script_file = os.path.join(tmp, f"{name}_driver.m")
    with open(script_file, "w") as f:
        f.write(script)
    command = ["octave", "--no-gui", "--no-window-system", "--quiet", script_file]
    subprocess.run(command, check=True, cwd=tmp)
    result = io.loadmat(out_mat)
    k = int(result["kf"].ravel()[0])
    basis = np.asarray(result["Ek"], dtype=np.float64).reshape(y.shape[0], k)
    return {
        "noise": np.asarray(result["w"], dtype=np.float64),
        "noise_corr": np.asarray(result["Rw"], dtype=np.float64),
        "k": np.int64(k),
        "basis": basis,
    }, command


def main(argv):
    reference = argv[1] if len(argv) > 1 else os.environ.get("HIF_BENCHMARKING")
    if not reference:
        raise SystemExit(__doc__)
    out_dir = argv[2] if len(argv) > 2 else DEFAULT_OUT
    inputs = dict(np.load(os.path.join(out_dir, "inputs.npz")))
    noisy = noisy_lr_hsi(inputs["lr_hsi"])
    commit, version = _commit(reference), _octave_version()
    record = {"lr_hsi_noisy": noisy}
    with tempfile.TemporaryDirectory() as tmp:
        code_dir = os.path.join(tmp, "sisal")
        os.makedirs(code_dir)
        shutil.copy(os.path.join(reference, SISAL, "estNoise.m"), code_dir)
        with open(os.path.join(reference, SISAL, "hysime.m"), "rb") as f:
            source, removed = patched_hysime(f.read())
        with open(os.path.join(code_dir, "hysime.m"), "wb") as f:
            f.write(source)
        for case, lr in (("clean", inputs["lr_hsi"]), ("noisy", noisy)):
            result, command = run_case(case, bands_by_pixels(lr), code_dir, tmp)
            for key, value in result.items():
                record[f"{case}_{key}"] = value
            print(f"{case}: k = {int(result['k'])}")
    n_removed = len(removed.strip().splitlines())
    record["note"] = np.array(
        f"[w, Rw] = estNoise (y, 'additive', 'off'); [kf, Ek] = hysime (y, w, Rw, 'off') of "
        f"magamig/hif-benchmarking@{commit} ({SISAL}/estNoise.m as is, hysime.m without its "
        f"{n_removed} final plotting lines) run under {version} by "
        f"tools/octave_fixtures_subspace.py (command: "
        f"{' '.join(os.path.basename(c) for c in command)}, no Octave package) on y = "
        f"lr_hsi.reshape(-1, L).T of tests/fixtures/baselines/inputs.npz ('clean') and of "
        f"lr_hsi_noisy ('noisy': white Gaussian noise, {NOISE_SNR_DB:g} dB per band, "
        f"numpy default_rng({NOISE_SEED})); Ek columns signed so that their largest-magnitude "
        f"entry is positive"
    )
    out = os.path.join(out_dir, "hysime.npz")
    np.savez_compressed(out, **record)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main(sys.argv)
