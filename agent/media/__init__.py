"""Files that arrive in chats, made ready for the model (issue 17): images downscaled to the
model's limits (`images.py`), documents' text extracted (`documents.py`), voice and audio
transcribed (`stt.py`), the intake with its size caps, labels and workspace copies
(`intake.py`), the room one message's files share (`share.py`), and what the router does
with a message's files and replies (`inbound.py`).
Blocking work runs in a thread (Pillow), a PDF in a process of its own (`pdf_child.py`)."""

__all__: list[str] = []
