"""The adapters function: adapters, their versions and the pointer, training jobs; for admins,
rollback, approval, discard and the training metrics."""
