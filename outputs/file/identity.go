package file

import "path/filepath"

// Identity implements outputs.Identifier: the absolute path.
func (o *Output) Identity() string {
	p, err := filepath.Abs(o.opt.Path)
	if err != nil {
		p = o.opt.Path
	}
	return "file:" + p
}
