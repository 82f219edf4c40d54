package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// stdoutTerminal reports whether standard output is a terminal, and its
// width in columns (0 when the terminal does not say).
func stdoutTerminal() (bool, int) {
	fd := int(os.Stdout.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return false, 0
	}
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return true, 0
	}
	return true, int(ws.Col)
}

// terminalWidth is how wide the output may be: the terminal's width, or
// 80 columns when stdout is not a terminal or does not say.
func (c *cli) terminalWidth() (isTerm bool, width int) {
	width = 80
	if c.terminal == nil {
		return false, width
	}
	isTerm, w := c.terminal()
	if w > 0 {
		width = w
	}
	return isTerm, width
}
