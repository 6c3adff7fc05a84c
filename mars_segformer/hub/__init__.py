"""Hub: model card rendering and one-commit publishing of run folders."""

from .card import render_card, template_path
from .push import HubPushError, files_to_upload, push_run

__all__ = ["HubPushError", "files_to_upload", "push_run", "render_card", "template_path"]
