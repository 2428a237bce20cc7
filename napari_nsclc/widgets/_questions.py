"""The questions the docks ask the user, each with its answers as keys: one table, one dialog."""

from __future__ import annotations

from qtpy.QtWidgets import QInputDialog, QMessageBox

from .. import workflow

__all__ = ["QUESTIONS", "annotator_named", "ask", "named_annotator"]

_ACCEPT, _REJECT, _DESTRUCTIVE = (QMessageBox.ButtonRole.AcceptRole, QMessageBox.ButtonRole.RejectRole,
                                  QMessageBox.ButtonRole.DestructiveRole)  # fmt: skip
#: Per question: the dialog's title and its buttons as (answer key, label, role).
QUESTIONS = {
    "unsaved": {"title": "Unsaved corrections", "buttons": (
        ("save", "Save", _ACCEPT), ("discard", "Discard", _DESTRUCTIVE), ("cancel", "Cancel", _REJECT))},
    "conflict": {"title": "Changed by someone else", "buttons": (
        ("reload", "Reload theirs", _DESTRUCTIVE), ("copy", "Save mine as a copy", _ACCEPT),
        ("cancel", "Cancel", _REJECT))},
    # where the case cannot be shown again (the Classes dock): keep both, or do nothing
    "conflict-copy": {"title": "Changed by someone else", "buttons": (
        ("copy", "Save mine as a copy", _ACCEPT), ("cancel", "Cancel", _REJECT))},
    "restore": {"title": "Autosaved corrections found", "buttons": (
        ("restore", "Restore", _ACCEPT), ("discard", "Discard", _DESTRUCTIVE))},
}


def ask(parent, question: str, text: str) -> str:
    """Ask ``question`` (a key of :data:`QUESTIONS`, or ``"annotator"``) in a modal dialog.

    Returns the answer's key, or for ``"annotator"`` the name typed;
    ``"cancel"`` when the dialog is closed.
    """
    if question == "annotator":
        name, ok = QInputDialog.getText(parent, "Who is annotating?", text)
        return name if ok else "cancel"
    choices = QUESTIONS[question]
    box = QMessageBox(parent)
    box.setWindowTitle(choices["title"])
    box.setText(text)
    buttons = {box.addButton(label, role): key for key, label, role in choices["buttons"]}
    box.exec_() if hasattr(box, "exec_") else box.exec()
    return buttons.get(box.clickedButton(), "cancel")


def named_annotator(workspace: workflow.Workspace, ask) -> bool:
    """Make sure saves are stamped with a name: ask it once (then kept in the settings); ``False`` if cancelled."""
    if workspace.annotator:
        return True
    name = ask("annotator", "Your name, stamped on every correction you save:")
    if not name or name == "cancel":
        return False
    workspace.annotator = workflow.set_annotator(name)
    return True


def annotator_named(ask) -> bool:
    """Make sure changes outside a workspace (a label pyramid's commits) are stamped with a name: asked once."""
    if workflow.annotator():
        return True
    name = ask("annotator", "Your name, stamped on every correction you commit:")
    if not name or name == "cancel":
        return False
    workflow.set_annotator(name)
    return True
