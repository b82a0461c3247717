"""The graph HySime skip against the float64 classical method on the Indian Pines test region.

Prints, per condition of the robustness sweep (`evaluation.simulate_condition`), the subspace
dimension and the PSNR (dB, `metrics.psnr`) of `GlobalSkip("hysime_detail_injection")`
(float32, in the graph, on the max-normalised pair as the zoo models see it), of
`baselines.hysime_detail_injection` (float64 numpy) and of `poly_detail_injection`. The
numbers in docs/differences.md ("the opt-in global skip") come from this script:

    KERAS_BACKEND=torch python tools/check_subspace_skip.py
"""

import keras

from keras_hsifusion import metrics
from keras_hsifusion.baselines import hysime_detail_injection, poly_detail_injection
from keras_hsifusion.evaluation import make_condition, simulate_condition
from keras_hsifusion.layers import GlobalSkip
from keras_hsifusion.ops.subspace import hysime_projection

CONDITIONS = (
    {},
    {"snr_lr_db": 35, "snr_msi_db": 35},
    {"snr_lr_db": 25, "snr_msi_db": 40},
    {"snr_lr_db": 15, "snr_msi_db": 40},
    {"psf_fwhm": 2.0},
    {"psf_fwhm": 7.0},
)


def main():
    print("condition | k graph | k numpy | graph dB | numpy dB | poly dB")
    for options in CONDITIONS:
        d = simulate_condition(make_condition(**options))
        lr, hr, target = d["inputs"]["lr_hsi"], d["inputs"]["hr_msi"], d["target"]
        top = float(lr.max())
        skip = GlobalSkip("hysime_detail_injection", d["scale"])([lr / top, hr / top])
        skip = keras.ops.convert_to_numpy(skip) * top
        k = int(keras.ops.convert_to_numpy(hysime_projection(lr)[1])[0])
        numpy_out, info = hysime_detail_injection(lr[0], hr[0], d["scale"], return_info=True)
        poly = poly_detail_injection(lr[0], hr[0], d["scale"])
        psnr = [float(metrics.psnr(target, x)) for x in (skip, numpy_out[None], poly[None])]
        name = ", ".join(f"{k_}={v}" for k_, v in options.items()) or "training degradation"
        print(f"{name} | {k} | {info['subspace_dim']} | " + " | ".join(f"{p:.2f}" for p in psnr))


if __name__ == "__main__":
    main()
