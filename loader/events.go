package loader

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf/ringbuf"
)

// EventReader reads advert events from the events ring buffer.
type EventReader struct {
	r *ringbuf.Reader
}

// Events opens a reader of the events ring buffer.
func (d *Datapath) Events() (*EventReader, error) {
	r, err := ringbuf.NewReader(d.objs.Events)
	if err != nil {
		return nil, fmt.Errorf("open events: %w", err)
	}
	return &EventReader{r: r}, nil
}

// Read blocks for the next event. It returns ringbuf.ErrClosed after Close.
func (e *EventReader) Read() (Event, error) {
	var ev Event
	rec, err := e.r.Read()
	if err != nil {
		return ev, err
	}
	if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &ev); err != nil {
		return ev, fmt.Errorf("decode event: %w", err)
	}
	return ev, nil
}

// Close stops the reader; a blocked Read returns.
func (e *EventReader) Close() error { return e.r.Close() }

// ReadEvents calls fn with each event until ctx is done, then returns ctx.Err().
func (d *Datapath) ReadEvents(ctx context.Context, fn func(Event)) error {
	r, err := d.Events()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	defer r.Close()
	for {
		e, err := r.Read()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		fn(e)
	}
}
