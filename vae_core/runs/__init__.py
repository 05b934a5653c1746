"""Runs and model files on disk: what training writes and what the app and the CLI read back.

- `checkpoints`: writing run directories atomically (`save_run`, `extract_run_zip`), a run as a zip
  (`run_zip`), and the run lock.
- `run_load`: reading them (`load_run`, `load_model`, `list_runs`, `eval_split`, `fingerprint`).
- `model_files`: a user's model file (TorchScript, zips of torch.export or ONNX programs; run in a
  sandbox worker), ours exported as TorchScript, and a pickle refused with how to convert it.
- `model_zips`: the zip formats' members and meta.json, checked before a worker opens them.
- `epoch_codes`: a training's codes per epoch (recording, the `.npz` file, the replay's PCA frame).
- `disk_modes`: files and folders made with the user's umask.

Imports nothing here: `import vae_core.runs.run_load` loads that module and what it needs only.
"""
