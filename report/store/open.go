package store

import (
	"context"
	"fmt"
	"path/filepath"
)

// Config says which store to open.
type Config struct {
	// Driver is "sqlite" (the default) or "postgres".
	Driver string
	// StateDir holds the SQLite database, DefaultFile, unless Path is set.
	StateDir string
	// Path is the SQLite database file.
	Path string
	// DSN is the PostgreSQL connection string (URL or key=value).
	DSN string
	// Options tune either driver.
	Options Options
}

// Open opens the store c describes.
func Open(ctx context.Context, c Config) (*DB, error) {
	switch c.Driver {
	case "", "sqlite":
		p := c.Path
		if p == "" {
			if c.StateDir == "" {
				return nil, fmt.Errorf("store: sqlite needs a state directory or a path")
			}
			p = filepath.Join(c.StateDir, DefaultFile)
		}
		return OpenSQLite(ctx, p, c.Options)
	case "postgres", "postgresql":
		if c.DSN == "" {
			return nil, fmt.Errorf("store: postgres needs a DSN")
		}
		return OpenPostgres(ctx, c.DSN, c.Options)
	}
	return nil, fmt.Errorf("store: unknown driver %q (sqlite or postgres)", c.Driver)
}
