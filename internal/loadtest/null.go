package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// The null milter's negotiation is dmarcd's (milter/server.go): the same
// protocol steps skipped, the same replies left out, the same actions and
// macros asked for. Kept in step by hand; TestNullNegotiatesLikeDmarcd
// compares them on the wire.
const (
	nullProtocol = gomilter.OptNoBody | gomilter.OptNoData | gomilter.OptNoUnknown |
		gomilter.OptNoHeloReply | gomilter.OptNoRcptReply | gomilter.OptNoHeaderReply | gomilter.OptNoEOHReply
	nullActions = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine
)

// nullHeader is the header the null milter inserts in every message, of
// the size of dmarcd's.
const nullHeader = AuthservID + "; dmarc=pass (p=reject dis=none) header.from=d000000.test"

// nullMilter does what every DMARC milter must do and nothing else: keep
// the From field and insert one Authentication-Results at the end of the
// message.
type nullMilter struct {
	gomilter.NoOpMilter
	from string
}

func (n *nullMilter) Header(name, value string, m gomilter.Modifier) (*gomilter.Response, error) {
	if name == "From" {
		n.from = value
	}
	return gomilter.RespContinue, nil
}

func (n *nullMilter) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	n.from = ""
	if err := m.InsertHeader(0, "Authentication-Results", nullHeader); err != nil {
		return nil, err
	}
	return gomilter.RespAccept, nil
}

// NullServer is the null milter serving on listeners, built with the
// library dmarcd uses (github.com/d--j/go-milter), negotiating as dmarcd
// does: the most any DMARC milter on this library and transport can do.
type NullServer struct {
	srv *gomilter.Server
}

// NewNullServer returns a null milter. With replies it asks the MTA for a
// reply to every step, as a milter that cannot use protocol 6's no-reply
// options would (OpenDMARC's libmilter does not ask for them either): what
// those options save.
func NewNullServer(replies bool) *NullServer {
	protocol := nullProtocol
	if replies {
		protocol &^= gomilter.OptNoHeloReply | gomilter.OptNoRcptReply | gomilter.OptNoHeaderReply | gomilter.OptNoEOHReply
	}
	negotiate := func(mtaVersion, milterVersion uint32, mtaActions, _ gomilter.OptAction, mtaProtocol, _ gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
		v := min(mtaVersion, milterVersion)
		if v < 2 {
			return 0, 0, 0, 0, fmt.Errorf("MTA speaks milter protocol %d", mtaVersion)
		}
		if mtaActions&nullActions != nullActions {
			return 0, 0, 0, 0, errors.New("MTA does not allow the actions we need")
		}
		return v, nullActions, protocol & mtaProtocol, offered, nil
	}
	srv := gomilter.NewServer(
		gomilter.WithDynamicMilter(func(uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize) gomilter.Milter {
			return &nullMilter{}
		}),
		gomilter.WithActions(nullActions),
		gomilter.WithProtocols(protocol),
		gomilter.WithNegotiationCallback(negotiate),
		gomilter.WithMacroRequest(gomilter.StageConnect, []string{gomilter.MacroMTAFQDN, gomilter.MacroClientAddr}),
		gomilter.WithMacroRequest(gomilter.StageMail, []string{gomilter.MacroAuthAuthen, gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []string{gomilter.MacroQueueId}),
		gomilter.WithReadTimeout(10*time.Minute),
		gomilter.WithWriteTimeout(30*time.Second),
	)
	return &NullServer{srv: srv}
}

// Serve accepts connections on ln until Shutdown.
func (n *NullServer) Serve(ln net.Listener) error {
	err := n.srv.Serve(ln)
	if errors.Is(err, gomilter.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listeners and waits for the sessions in progress.
func (n *NullServer) Shutdown(ctx context.Context) error {
	return n.srv.Shutdown(ctx)
}
