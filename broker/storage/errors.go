package storage

import "errors"

// Sentinel errors. Returned errors wrap them; test with errors.Is. Each maps
// onto the Kafka error code of the same name.
var (
	// ErrCorruptMessage: a batch failed its CRC-32C check or is malformed
	// (length field inconsistent with the bytes given, partial batch).
	ErrCorruptMessage = errors.New("storage: corrupt message")
	// ErrMessageTooLarge: a batch is larger than Config.MaxMessageBytes.
	ErrMessageTooLarge = errors.New("storage: message too large")
	// ErrUnsupportedMagic: a batch is not a v2 (magic 2) record batch.
	ErrUnsupportedMagic = errors.New("storage: unsupported record batch magic")
	// ErrInvalidRecord: a well-formed batch that the log must not accept
	// (no records, inconsistent last offset delta, control batch from a
	// client).
	ErrInvalidRecord = errors.New("storage: invalid record")
	// ErrOutOfOrderSequence: an idempotent batch's first sequence does not
	// follow the producer's last one.
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch: a batch from an older epoch of a producer
	// (the producer has been fenced).
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")
	// ErrOffsetOutOfRange: a read below the log start offset or above the log
	// end offset.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrLogFailed: a write or fsync failed in a way that cannot be undone;
	// the log refuses appends and syncs until it is reopened, and recovery
	// decides what survived. Maps onto KAFKA_STORAGE_ERROR.
	ErrLogFailed = errors.New("storage: log failed")
	// ErrClosed: the log or allocator has been closed.
	ErrClosed = errors.New("storage: closed")
)
