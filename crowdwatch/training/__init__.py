"""Training of crowdwatch's density-map crowd counter (needs torch; inference does not).

Modules: :mod:`.model` (network and the COCO backbone transfer), :mod:`.data` (samples, crops,
density targets), :mod:`.train` (the resumable training loop), :mod:`.export` (ONNX export).
"""
