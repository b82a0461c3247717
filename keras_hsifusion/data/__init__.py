"""Data for fusion: readers/writers, real scenes, sensor simulation and patch datasets."""

from keras_hsifusion.data.conditions import DegradationSampler, band_snr_offsets
from keras_hsifusion.data.degrade import degrade, psf_matrix, psf_radius, spatial_degrade
from keras_hsifusion.data.io import read_cube, read_hssdct_sample, write_cube, write_hssdct_sample
from keras_hsifusion.data.patches import FusionPatches, spatial_split
from keras_hsifusion.data.raster import (
    Raster,
    check_footprints,
    open_writer,
    read_raster,
    write_raster,
)
from keras_hsifusion.data.scenes import indian_pines, indian_pines_bands
from keras_hsifusion.data.srf import list_sensors, sensor_table, spectral_response

__all__ = [
    "Raster",
    "check_footprints",
    "open_writer",
    "read_raster",
    "write_raster",
    "DegradationSampler",
    "FusionPatches",
    "band_snr_offsets",
    "degrade",
    "indian_pines",
    "indian_pines_bands",
    "list_sensors",
    "psf_matrix",
    "psf_radius",
    "read_cube",
    "read_hssdct_sample",
    "sensor_table",
    "spatial_degrade",
    "spatial_split",
    "spectral_response",
    "write_cube",
    "write_hssdct_sample",
]
