package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// Exit statuses. check uses 1 for an invalid configuration; every command uses 2
// for a bad command line.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitError carries an exit status out of an Action; its message, if any, has
// already been printed when err is nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError makes a bad command line exit 2 after printing the command's usage.
func usageError(c *cli.Context, format string, args ...any) error {
	fmt.Fprintf(c.App.ErrWriter, "xvrrp %s: %s\n\n", c.Command.Name, fmt.Sprintf(format, args...))
	showUsage(c)
	return &exitError{code: exitUsage}
}

// showUsage prints the help of c's command, or of the app, to the error writer.
func showUsage(c *cli.Context) {
	if c.Command != nil && c.Command.Name != "" {
		cli.HelpPrinter(c.App.ErrWriter, cli.CommandHelpTemplate, c.Command)
		return
	}
	cli.HelpPrinter(c.App.ErrWriter, cli.AppHelpTemplate, c.App)
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "xvrrp",
		Usage:     "VRRP failover with an eBPF datapath, configured like keepalived",
		Version:   version(),
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			runCommand,
			checkCommand,
			statusCommand,
			demoCommand,
			benchCommand,
			manCommand,
		},
		// Actions return errors; run decides the exit status, never cli.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			name := "xvrrp"
			if c.Command != nil && c.Command.Name != "" {
				name += " " + c.Command.Name
			}
			fmt.Fprintf(stderr, "%s: %v\n\n", name, err)
			showUsage(c)
			return &exitError{code: exitUsage}
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(stderr, "xvrrp: no command %q\n\n", name)
			showUsage(c)
		},
	}
	app.Action = func(c *cli.Context) error {
		if c.Args().Present() {
			fmt.Fprintf(stderr, "xvrrp: no command %q\n\n", c.Args().First())
		}
		showUsage(c)
		return &exitError{code: exitUsage}
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
	}
	return app
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "xvrrp: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "xvrrp: %v\n", err)
	return exitFailure
}
