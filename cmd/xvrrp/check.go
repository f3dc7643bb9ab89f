package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
	"github.com/xvrrp/xvrrp/health"
	"github.com/xvrrp/xvrrp/vrrp/agent"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

const defaultConfig = "/etc/keepalived/keepalived.conf"

var configFlags = []cli.Flag{
	&cli.StringFlag{
		Name:    "use-file",
		Aliases: []string{"f"},
		Usage:   "keepalived.conf to read",
		Value:   defaultConfig,
	},
	&cli.StringFlag{
		Name:    "config-id",
		Aliases: []string{"i"},
		Usage:   "keep lines starting @ID and drop @^ID, as keepalived -i (default: host name)",
	},
}

var checkCommand = &cli.Command{
	Name:      "check",
	Usage:     "check a keepalived.conf and print the configuration xvrrp would run",
	ArgsUsage: " ",
	Description: `Reads the VRRP side of a keepalived configuration, with its includes, and
prints every instance as xvrrp will run it, or every error with file:line: its
priorities, how adverts are sent and which are taken (unicast peers and their
min_ttl/max_ttl, v3_checksum_as_v2, the check of the advertised addresses and
skip_check_adv_addr), what is held while master and whether it is put back when
removed (no_track), dont_track_primary and dynamic_interfaces.
Exit status: 0 valid, 1 invalid, 2 bad command line.`,
	Flags: configFlags,
	Action: func(c *cli.Context) error {
		if c.Args().Present() {
			return usageError(c, "unexpected argument %q (the file goes after -f)", c.Args().First())
		}
		cfg, err := config.Load(c.String("use-file"), config.Options{ConfigID: c.String("config-id")})
		out, errOut := c.App.Writer, c.App.ErrWriter
		for _, w := range cfg.Warnings {
			fmt.Fprintf(errOut, "warning: %s\n", w)
		}
		if err != nil {
			return configError(errOut, c.String("use-file"), err)
		}
		cfg.Print(out, health.NewPolicy(cfg))
		fmt.Fprintf(out, "process: %v\n", agent.TuningOf(cfg.Global))
		fmt.Fprintf(out, "%s: valid, %d instance(s), %d warning(s)\n", c.String("use-file"), len(cfg.Instances), len(cfg.Warnings))
		return nil
	},
}

// configError prints each of a configuration's errors with file:line, then
// returns the exit status for it.
func configError(errOut io.Writer, file string, err error) error {
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		return &exitError{code: exitFailure, err: err}
	}
	for _, d := range cerr.Diags {
		fmt.Fprintf(errOut, "%s\n", d)
	}
	fmt.Fprintf(errOut, "%s: %d error(s)\n", file, len(cerr.Diags))
	return &exitError{code: exitFailure}
}
