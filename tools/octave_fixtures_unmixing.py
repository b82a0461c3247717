"""Golden fixtures of CNMF, HySure and FUSE: the reference MATLAB code run under GNU Octave.

Not part of the package, and `make test` does not run it: it needs GNU Octave (7.x, with the
``image``, ``signal``, ``optim`` and ``statistics`` packages: ``apt-get install octave
octave-image octave-signal octave-optim octave-statistics``) and a checkout of the public
repository magamig/hif-benchmarking, whose ``methods/`` folder collects the toolbox code of
the comparative review of Yokoya, Grohnfeldt and Chanussot (GRSM 2017)::

    python tools/octave_fixtures_unmixing.py /path/to/hif-benchmarking [out_dir]

(or set ``HIF_BENCHMARKING``). It reads the shared input pair
``tests/fixtures/baselines/inputs.npz`` (``tools/baseline_fixture_inputs.py``), runs the
reference wrappers ``CNMF_fusion``, ``HySure_wrapper`` and ``FUSE_wrapper`` on it in a
temporary folder, and writes ``cnmf.npz``, ``hysure.npz`` and ``fuse_wei.npz`` next to it:
``output`` (float32, the reference's fused image), the fixed initialisation fed to both
sides where the method draws random numbers (``vca_draws``, float64, and ``draws_used``) and
``note`` (reference commit, Octave version, command, what was shimmed).

Three things are put in front of the reference code, none of which changes its math:

- ``rand``: VCA (in CNMF and in HySure) draws its random directions with ``rand(p, 1)``. A
  shim ``rand.m`` serves the uniform draws stored in the fixture in order (the port takes
  them as ``vca_draws``), so both sides start from the same initialisation.
- ``svds``: VCA projects the data on the leading singular vectors, whose signs are arbitrary
  (Octave's ``svds`` picks them through ``eigs``); the shim computes the same vectors with a
  dense ``svd`` and makes the largest-magnitude entry of each vector positive, the convention
  of ``keras_hsifusion.baselines._unmixing``.
- FUSE's ``SylvesterFusion`` ships only as MATLAB p-code (``methods/FUSE/func_global/
  SylvesterFusion.p``), which Octave cannot run; the same function's source, published with
  the authors' later code, is in ``methods/_BlindFuse/func_CloseForm/`` and is used instead.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, os.pardir, "tests", "fixtures", "baselines")
DRAW_SEED = 20260412
CNMF_DRAWS = 64 * 64  # at least M * M for the M <= max(30, C) endmembers VCA extracts
HYSURE_RUNS, HYSURE_P = 20, 30

RAND_SHIM = r"""function r = rand (varargin)
  % Serves the fixture's uniform draws in order while HIF_DRAWS is set.
  global HIF_DRAWS HIF_DRAW_POS
  if (isempty (HIF_DRAWS) || nargin == 0 || ischar (varargin{1}))
    r = builtin ("rand", varargin{:});
    return;
  end
  sz = [varargin{:}];
  if (numel (sz) == 1)
    sz = [sz sz];
  end
  n = prod (sz);
  if (HIF_DRAW_POS + n > numel (HIF_DRAWS))
    error ("rand shim: the fixture holds too few draws");
  end
  r = reshape (HIF_DRAWS(HIF_DRAW_POS + 1:HIF_DRAW_POS + n), sz);
  HIF_DRAW_POS = HIF_DRAW_POS + n;
end
"""

SVDS_SHIM = r"""function [U, S, V] = svds (A, k)
  % Leading k singular triplets by a dense SVD, largest-magnitude entry of each U column > 0.
  [U, S, V] = svd (full (A));
  U = U(:, 1:k); S = S(1:k, 1:k); V = V(:, 1:k);
  [~, idx] = max (abs (U), [], 1);
  s = sign (U(sub2ind (size (U), idx, 1:k)));
  s(s == 0) = 1;
  U = U .* s; V = V .* s;
  if (nargout <= 1)
    U = diag (S);
  end
end
"""

DRIVER = r"""pkg load image signal optim statistics
warning ("off", "all");
load ("{inputs}");
global HIF_DRAWS HIF_DRAW_POS
HIF_DRAWS = draws(:); HIF_DRAW_POS = 0;
tic;
out = {call};
seconds = toc;
draws_used = HIF_DRAW_POS;
save ("-v7", "{output}", "out", "draws_used", "seconds");
"""

METHODS = {
    # name: (reference folders on the path, call)
    "cnmf": (["methods/CNMF"], "CNMF_fusion (lr, msi)"),
    "hysure": (["methods/CNMF", "methods/HySure"], "HySure_wrapper (lr, msi)"),
    "fuse_wei": (
        ["methods/CNMF", "methods/FUSE", "@func_global", "methods/_BlindFuse/func_CloseForm"],
        "FUSE_wrapper (lr, msi)",
    ),
}


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


def _path_dirs(reference, folders, tmp):
    dirs = []
    for folder in folders:
        if folder == "@func_global":
            # FUSE's helpers without the p-code file, which Octave cannot load.
            dest = os.path.join(tmp, "fuse_func_global")
            os.makedirs(dest, exist_ok=True)
            src = os.path.join(reference, "methods", "FUSE", "func_global")
            for name in os.listdir(src):
                if name.endswith(".m") and name != "SylvesterFusion.m":
                    shutil.copy(os.path.join(src, name), dest)
            dirs.append(dest)
        else:
            dirs.append(os.path.join(reference, folder))
    return dirs


def run_method(name, reference, inputs, draws, tmp):
    """Runs one reference wrapper under Octave; returns (output, draws_used, seconds)."""
    from scipy import io

    folders, call = METHODS[name]
    shims = os.path.join(tmp, "shims")
    os.makedirs(shims, exist_ok=True)
    with open(os.path.join(shims, "rand.m"), "w") as f:
        f.write(RAND_SHIM)
    with open(os.path.join(shims, "svds.m"), "w") as f:
        f.write(SVDS_SHIM)
    in_mat = os.path.join(tmp, f"{name}_in.mat")
    out_mat = os.path.join(tmp, f"{name}_out.mat")
    io.savemat(
        in_mat,
        {
            "lr": inputs["lr_hsi"].astype(np.float64),
            "msi": inputs["hr_msi"].astype(np.float64),
            "draws": np.asarray(draws, dtype=np.float64).reshape(-1, 1),
        },
    )
    # addpath prepends: the shims go last so that they come first.
    paths = _path_dirs(reference, folders, tmp) + [shims]
    script = "".join(f'addpath ("{p}");\n' for p in paths)
    script += DRIVER.format(inputs=in_mat, output=out_mat, call=call)
    script_file = os.path.join(tmp, f"{name}_driver.m")
    with open(script_file, "w") as f:
        f.write(script)
    command = ["octave", "--no-gui", "--no-window-system", "--quiet", script_file]
    subprocess.run(command, check=True, cwd=tmp)
    result = io.loadmat(out_mat)
    return (
        np.asarray(result["out"], dtype=np.float32),
        int(result["draws_used"].ravel()[0]),
        float(result["seconds"].ravel()[0]),
        command,
    )


def main(argv):
    reference = argv[1] if len(argv) > 1 else os.environ.get("HIF_BENCHMARKING")
    if not reference:
        raise SystemExit(__doc__)
    out_dir = argv[2] if len(argv) > 2 else DEFAULT_OUT
    only = argv[3].split(",") if len(argv) > 3 else list(METHODS)
    inputs = dict(np.load(os.path.join(out_dir, "inputs.npz")))
    rng = np.random.default_rng(DRAW_SEED)
    all_draws = {
        "cnmf": rng.random(CNMF_DRAWS),
        "hysure": rng.random(HYSURE_RUNS * HYSURE_P * HYSURE_P),
        "fuse_wei": np.zeros(0),
    }
    commit, version = _commit(reference), _octave_version()
    with tempfile.TemporaryDirectory() as tmp:
        for name in only:
            draws = all_draws[name]
            output, used, seconds, command = run_method(name, reference, inputs, draws, tmp)
            folders, call = METHODS[name]
            folders = [
                "methods/FUSE/func_global (*.m)" if f == "@func_global" else f for f in folders
            ]
            note = (
                f"{call} of magamig/hif-benchmarking@{commit} (folders "
                f"{', '.join(folders)}) run under {version} by "
                f"tools/octave_fixtures_unmixing.py on tests/fixtures/baselines/inputs.npz "
                f"(command: {' '.join(os.path.basename(c) for c in command)}, Octave packages "
                f"image, signal, optim, statistics); shims: rand (served vca_draws, {used} "
                f"used), svds (dense svd, sign convention); "
                f"{seconds:.2f} s in Octave"
            )
            if name == "fuse_wei":
                note += "; SylvesterFusion.p replaced by _BlindFuse/func_CloseForm/*.m"
            record = {"output": output, "note": np.array(note)}
            if used:
                record["vca_draws"] = draws[:used].astype(np.float64)
                record["draws_used"] = np.array(used)
            np.savez_compressed(os.path.join(out_dir, f"{name}.npz"), **record)
            print(f"{name}: {output.shape} {seconds:.2f} s, {used} draws")


if __name__ == "__main__":
    main(sys.argv)
