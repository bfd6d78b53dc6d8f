"""The plane of people's heads, from a calibration of the ground.

Density-map counters put each person's mass on the head, not the feet: the head is what a camera
sees in a crowd. Mapping head pixels through the ground homography puts people a body height too
far from the camera. A ground homography fixes the camera up to its focal length, which two
constraints of a rotation (orthogonal, equal-length columns) recover, assuming square pixels and
the principal point at the image centre (true of CCTV cameras to within a few per cent). From the
full camera, the homography of any plane parallel to the ground follows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from crowdwatch.calibration.homography import CalibrationError, GroundCalibration


def focal_length_px(calibration: GroundCalibration, width: float, height: float) -> float:
    """The camera's focal length in pixels implied by a ground homography.

    Raises:
        CalibrationError: when the homography implies no real camera (for example a frontal view
            of the ground, where the focal length is undetermined).
    """
    columns = _centred_ground_to_image(calibration, width, height)
    g1, g2 = columns[:, 0], columns[:, 1]
    estimates = []
    orthogonal_denominator = g1[2] * g2[2]
    if abs(orthogonal_denominator) > 1e-12:
        estimates.append(-(g1[0] * g2[0] + g1[1] * g2[1]) / orthogonal_denominator)
    equal_denominator = g2[2] ** 2 - g1[2] ** 2
    if abs(equal_denominator) > 1e-12:
        estimates.append((g1[0] ** 2 + g1[1] ** 2 - g2[0] ** 2 - g2[1] ** 2) / equal_denominator)
    squares = [value for value in estimates if value > 0]
    if not squares:
        raise CalibrationError(
            "the ground calibration implies no real camera (is the ground seen straight on?); "
            "people's heads cannot be placed: give the calibration a 'head_height_m' of 0"
        )
    return float(np.sqrt(np.mean(squares)))


def raised_calibration(
    calibration: GroundCalibration,
    height_m: float,
    width: float,
    height: float,
    *,
    pixel_aspect: float = 1.0,
) -> GroundCalibration:
    """The calibration of the plane ``height_m`` above the ground, in the same ground coordinates.

    ``to_ground`` of the result maps a pixel showing a point at that height (a head at 1.7 m) to
    the ground position straight below it. ``pixel_aspect`` is the width over the height of one
    pixel of the ``width`` x ``height`` frames (1: square pixels, as a camera's main stream; a
    704x576 substream of a 1920x1080 camera has pixels about 1.45 times as wide as high): the
    camera is recovered on the frames stretched to square pixels.

    Example:
        >>> ground = GroundCalibration.from_points(  # doctest: +SKIP
        ...     image_points, ground_points)
        >>> heads = raised_calibration(ground, 1.7, 768, 576)  # doctest: +SKIP
    """
    if height_m == 0:
        return calibration
    if pixel_aspect != 1.0:
        return _raised_on_square_pixels(
            calibration, height_m, width=width, height=height, pixel_aspect=pixel_aspect
        )
    focal = focal_length_px(calibration, width, height)
    camera = np.diag([focal, focal, 1.0])
    columns = _centred_ground_to_image(calibration, width, height)
    normalised = np.linalg.inv(camera) @ columns
    scale = 1.0 / np.linalg.norm(normalised[:, 0])
    r1, r2, t = (normalised[:, i] * scale for i in range(3))
    r3 = np.cross(r1, r2)
    rotation = np.column_stack([r1, r2, r3])
    # Up is the side of the ground the camera is on.
    if (-rotation.T @ t)[2] < 0:
        r3 = -r3
    raised = camera @ np.column_stack([r1, r2, t + height_m * r3])
    uncentre = np.array([[1.0, 0.0, width / 2.0], [0.0, 1.0, height / 2.0], [0.0, 0.0, 1.0]])
    to_image = uncentre @ raised
    homography = np.linalg.inv(to_image)
    homography /= homography[2, 2] if abs(homography[2, 2]) > 1e-12 else 1.0
    result = replace(calibration, homography=homography)
    # Keep the horizon test pointing the same way as the ground calibration at the frame centre.
    centre = np.array([[width / 2.0, height / 2.0]])
    if (
        np.isnan(result.to_ground(centre)).any()
        and not np.isnan(calibration.to_ground(centre)).any()
    ):
        result = replace(result, valid_sign=-calibration.valid_sign)
    return result


def _raised_on_square_pixels(
    calibration: GroundCalibration,
    height_m: float,
    *,
    width: float,
    height: float,
    pixel_aspect: float,
) -> GroundCalibration:
    """:func:`raised_calibration` of frames with non-square pixels: computed on the frames
    stretched to square pixels (x' = x * pixel_aspect), then mapped back to the frames' pixels."""
    to_square = np.diag([pixel_aspect, 1.0, 1.0])
    square = calibration.resampled(np.linalg.inv(to_square))
    return raised_calibration(square, height_m, width * pixel_aspect, height).resampled(to_square)


def _centred_ground_to_image(
    calibration: GroundCalibration, width: float, height: float
) -> np.ndarray:
    """Ground -> image homography with the principal point moved to the origin."""
    centre = np.array([[1.0, 0.0, -width / 2.0], [0.0, 1.0, -height / 2.0], [0.0, 0.0, 1.0]])
    return centre @ np.linalg.inv(calibration.homography)
