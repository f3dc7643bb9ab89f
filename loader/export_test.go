package loader

import "time"

// SetDeadline makes Read return os.ErrDeadlineExceeded after t: tests wait for
// an event that must, or must not, come. The agent reads until it closes.
func (e *EventReader) SetDeadline(t time.Time) { e.r.SetDeadline(t) }
