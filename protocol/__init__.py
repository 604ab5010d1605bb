"""The wire contract between clients (OFX plugin, Python client) and the daemon: see SPEC.md. No torch here."""
from .codec import (DTYPES, MAX_HEADER_BYTES, PROTOCOL_VERSION, BufferSpec, Message, ProtocolError, decode_reply,
                    decode_request, encode_error, encode_reply, encode_request, wire_array)
from .content_hash import clip_hash, item_digest
from .messages import REQUEST_TYPES, STATES, check_reply, check_request, is_job_id

__all__ = ["DTYPES", "MAX_HEADER_BYTES", "PROTOCOL_VERSION", "BufferSpec", "Message", "ProtocolError",
           "decode_reply", "decode_request", "encode_error", "encode_reply", "encode_request", "wire_array",
           "clip_hash", "item_digest", "REQUEST_TYPES", "STATES", "check_reply", "check_request", "is_job_id"]
