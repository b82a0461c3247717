"""Runs the reference MATLAB SFIM-HS, GSA and MTF-GLP-HS under GNU Octave: golden fixtures.

Not part of the package and never run by ``make test``. It needs GNU Octave (7.3 was used)
with its ``image``, ``signal`` and ``optim`` packages (Debian: ``apt-get install octave
octave-image octave-signal octave-optim``), and a copy of the reference code, the public
repository magamig/hif-benchmarking (the toolbox code of Yokoya et al.'s comparative review),
outside this repository; only its ``methods/SFIM``, ``methods/GSA``, ``methods/GLP`` and
``auxiliary/globals`` folders are used::

    git clone https://github.com/magamig/hif-benchmarking /tmp/hif-benchmarking
    for pair in inputs inputs_x3; do
        python tools/octave_fixtures_pansharp.py --reference /tmp/hif-benchmarking \
            --inputs tests/fixtures/baselines/$pair.npz [--commit SHA] [--methods sfim gsa glp]
    done

For each method it writes ``.mat`` inputs to a temporary folder, calls
``octave --no-gui --quiet --eval ...`` with the method's reference entry point on the
double-precision fixture pair (``tools/baseline_fixture_inputs.py``):

- ``sfim``: ``SFIM(hs, ms)`` (``methods/SFIM/SFIM.m``, mode 3, NNLS through ``quadprog`` of
  the Octave ``optim`` package);
- ``gsa``: ``GSA_wrapper(hs, ms)`` (``methods/GSA``);
- ``glp``: ``MTF_GLP_wrapper(hs, ms)`` (``methods/GLP`` and ``auxiliary/globals`` for
  ``gaussian_down_sample``),

and stores ``tests/fixtures/baselines/<method><suffix>.npz`` (the suffix of the inputs'
name: ``inputs.npz`` -> ``sfim.npz``, ``inputs_x3.npz`` -> ``sfim_x3.npz``) with ``output``
(float32, the Octave result, channels-last like the inputs) and ``note`` (how it was made:
repository, commit, Octave version, packages, shims, the command).

Two shims are put first on Octave's path: ``cov.m`` with MATLAB's semantics for two vectors
(``cov(x, y)`` is the 2 x 2 covariance matrix of ``[x(:), y(:)]``, normalised by N - 1;
Octave 7's own ``cov(x, y)`` returns the scalar cross-covariance, so the reference's
``c(1,2)`` would fail; Octave 8 adopted MATLAB's meaning), and ``corrcoef.m`` (the Pearson
matrix from that ``cov``; Octave 7's ``corrcoef`` calls ``cov(x, y)`` itself and breaks with
the first shim). The ``im2uint16`` quantisation of the benchmark's ``*_run.m`` scripts is
not applied (it belongs to their file format).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

METHODS = {
    "sfim": ("SFIM(hs, ms)", ["methods/SFIM"]),
    "gsa": ("GSA_wrapper(hs, ms)", ["methods/GSA"]),
    "glp": ("MTF_GLP_wrapper(hs, ms)", ["methods/GLP", "auxiliary/globals"]),
}
REPOSITORY = "https://github.com/magamig/hif-benchmarking"

COV_SHIM = """function c = cov(x, y)
% MATLAB semantics of cov for the reference code (shim; Octave 7 differs for two arguments).
if nargin == 2
  x = [x(:), y(:)];
elseif isvector(x)
  x = x(:);
end
n = size(x, 1);
xc = x - mean(x, 1);
c = (xc' * xc) / max(n - 1, 1);
end
"""
# Octave 7's corrcoef calls its own cov(x, y); with the shim above it needs its MATLAB twin.
CORRCOEF_SHIM = """function r = corrcoef(x, y)
% MATLAB semantics of corrcoef for the reference code (shim, Pearson, no options).
if nargin == 2
  x = [x(:), y(:)];
elseif isvector(x)
  x = x(:);
end
c = cov(x);
d = sqrt(diag(c));
r = c ./ (d * d');
end
"""


def _octave_version(octave):
    out = subprocess.run(
        [octave, "--no-gui", "--quiet", "--eval", "disp(version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _commit(reference, given):
    if given:
        return given
    try:
        out = subprocess.run(
            ["git", "-C", reference, "rev-parse", "HEAD"], capture_output=True, text=True
        )
        if out.returncode == 0:
            return out.stdout.strip()
    except OSError:
        pass
    return "unknown (pass --commit)"


def run_method(name, inputs, reference, octave="octave"):
    """The Octave output of one reference method on the fixture pair (float64, channels-last)."""
    from scipy.io import loadmat, savemat

    call, folders = METHODS[name]
    tmp = tempfile.mkdtemp(prefix=f"octave_{name}_")
    try:
        shim = os.path.join(tmp, "shim")
        os.makedirs(shim)
        with open(os.path.join(shim, "cov.m"), "w") as f:
            f.write(COV_SHIM)
        with open(os.path.join(shim, "corrcoef.m"), "w") as f:
            f.write(CORRCOEF_SHIM)
        in_mat, out_mat = os.path.join(tmp, "in.mat"), os.path.join(tmp, "out.mat")
        savemat(
            in_mat,
            {
                "hs": np.asarray(inputs["lr_hsi"], dtype=np.float64),
                "ms": np.asarray(inputs["hr_msi"], dtype=np.float64),
            },
        )
        paths = "".join(f"addpath('{os.path.join(reference, d)}'); " for d in folders)
        script = (
            "pkg load image; pkg load signal; pkg load optim; warning('off', 'all'); "
            f"{paths}addpath('{shim}'); load('{in_mat}'); out = {call}; "
            f"save('-mat7-binary', '{out_mat}', 'out');"
        )
        command = [octave, "--no-gui", "--quiet", "--eval", script]
        subprocess.run(command, check=True)
        out = loadmat(out_mat)["out"]
        shown = script.replace(reference, "<reference>").replace(tmp, "<tmp>")
        return np.asarray(out, dtype=np.float64), " ".join(command[:-1]) + f' "{shown}"'
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference",
        default=os.environ.get("HIF_BENCHMARKING_DIR"),
        help="checkout of magamig/hif-benchmarking (or $HIF_BENCHMARKING_DIR)",
    )
    parser.add_argument("--commit", default=None, help="commit of the reference checkout")
    parser.add_argument(
        "--inputs", default=os.path.join("tests", "fixtures", "baselines", "inputs.npz")
    )
    parser.add_argument("--out-dir", default=None, help="defaults to the folder of --inputs")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--octave", default="octave")
    args = parser.parse_args(argv)
    if not args.reference or not os.path.isdir(os.path.join(args.reference, "methods")):
        parser.error("--reference must be a checkout of magamig/hif-benchmarking")
    reference = os.path.abspath(args.reference)
    out_dir = args.out_dir or os.path.dirname(args.inputs)
    with np.load(args.inputs) as data:
        inputs = {k: data[k] for k in data.files}
    version = _octave_version(args.octave)
    commit = _commit(reference, args.commit)
    for name in args.methods:
        out, command = run_method(name, inputs, reference, args.octave)
        note = (
            f"Octave output of {METHODS[name][0]} from {REPOSITORY} at commit {commit} "
            f"(folders {', '.join(METHODS[name][1])}), GNU Octave {version} with packages "
            "image, signal, optim; shims cov.m and corrcoef.m (MATLAB semantics of cov(x, y) "
            "and corrcoef(x, y)); inputs "
            f"{os.path.basename(args.inputs)} (lr_hsi as hs, hr_msi as ms, float64). "
            f"Made by tools/octave_fixtures_pansharp.py: {command}"
        )
        suffix = os.path.splitext(os.path.basename(args.inputs))[0][len("inputs") :]
        path = os.path.join(out_dir, f"{name}{suffix}.npz")
        np.savez_compressed(path, output=out.astype(np.float32), note=np.array(note))
        print(f"wrote {path} ({os.path.getsize(path)} bytes), output {out.shape}")


if __name__ == "__main__":
    main(sys.argv[1:])
