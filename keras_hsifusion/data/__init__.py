"""Data for fusion: readers/writers, real scenes, sensor simulation and patch datasets."""

from keras_hsifusion.data.conditions import DegradationSampler, band_snr_offsets
from keras_hsifusion.data.degrade import degrade, psf_matrix, psf_radius, spatial_degrade
from keras_hsifusion.data.patches import FusionPatches, spatial_split
from keras_hsifusion.data.raster import (
    Raster,
    check_footprints,
    open_writer,
    read_cube,
    read_hssdct_sample,
    read_raster,
    write_cube,
    write_hssdct_sample,
    write_raster,
)
from keras_hsifusion.data.responses import (
    ResponseSampler,
    nominal_condition,
    read_response_table,
    response_sampler,
    table_response,
)
from keras_hsifusion.data.scene_files import (
    Scene,
    SceneCollection,
    find_scenes,
    open_scene,
    open_scenes,
    region_statistics,
)
from keras_hsifusion.data.scene_patches import LazyFusionPatches, simulate_regions, split_scenes
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
    "LazyFusionPatches",
    "ResponseSampler",
    "Scene",
    "SceneCollection",
    "band_snr_offsets",
    "degrade",
    "find_scenes",
    "indian_pines",
    "indian_pines_bands",
    "list_sensors",
    "nominal_condition",
    "open_scene",
    "open_scenes",
    "psf_matrix",
    "psf_radius",
    "read_cube",
    "read_hssdct_sample",
    "read_response_table",
    "region_statistics",
    "response_sampler",
    "sensor_table",
    "simulate_regions",
    "spatial_degrade",
    "spatial_split",
    "spectral_response",
    "split_scenes",
    "table_response",
    "write_cube",
    "write_hssdct_sample",
]
