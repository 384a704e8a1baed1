package pingmsg

import (
	"strconv"
	"time"
)

// The UDP heartbeat of the handout's optional exercise: the client sends "heartbeat <seq>
// <timestamp>" and the server, which does not answer, reports what went missing. The timestamp
// is the assignment's (Python's str(datetime.now()), the local time), or, as a student's client
// may send it, Unix seconds with a fraction (Python's time.time()).

const heartbeatPrefix = "heartbeat "

// AppendHeartbeat appends heartbeat seq's message, sent at t: "heartbeat <seq> <timestamp>".
func AppendHeartbeat(b []byte, seq int, t time.Time) []byte {
	b = append(b, heartbeatPrefix...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	return t.AppendFormat(b, timeLayout)
}

// IsHeartbeat reports whether b starts as a heartbeat, in any case: a server tells heartbeats
// from pings with it before it parses them.
func IsHeartbeat(b []byte) bool { return HasPrefixFold(b, heartbeatPrefix) }

// ParseHeartbeat reads a heartbeat: "heartbeat <seq> <timestamp>", in any case, the timestamp
// in the assignment's layout (read in loc, the time zone the sender wrote it in; nil is the
// local one) or in Unix seconds. Anything may follow the timestamp after a space. ok is false
// for anything else; seq is at least 1.
func ParseHeartbeat(b []byte, loc *time.Location) (seq int, sent time.Time, ok bool) {
	if !IsHeartbeat(b) {
		return 0, time.Time{}, false
	}
	seq, i, ok := readUint(b, len(heartbeatPrefix))
	if !ok || seq < 1 || i >= len(b) || b[i] != ' ' {
		return 0, time.Time{}, false
	}
	rest := b[i+1:]
	if loc == nil {
		loc = time.Local
	}
	if len(rest) >= len(timeLayout) && (len(rest) == len(timeLayout) || rest[len(timeLayout)] == ' ') {
		if t, err := time.ParseInLocation(timeLayout, string(rest[:len(timeLayout)]), loc); err == nil {
			return seq, t, true
		}
	}
	end := 0
	for end < len(rest) && rest[end] != ' ' {
		end++
	}
	if t, ok := parseUnix(string(rest[:end])); ok {
		return seq, t, true
	}
	return 0, time.Time{}, false
}

// parseUnix reads Unix seconds, "1763823763" or "1763823763.123456", to the nanosecond.
func parseUnix(s string) (time.Time, bool) {
	ns, ok := parseNanos(s)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

func parseNanos(s string) (int64, bool) {
	whole, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac = s[:i], s[i+1:]
			break
		}
	}
	if whole == "" || len(whole) > 11 || (len(s) > len(whole) && frac == "") {
		return 0, false
	}
	var sec int64
	for i := 0; i < len(whole); i++ {
		c := whole[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		sec = sec*10 + int64(c-'0')
	}
	var ns int64
	for i := 0; i < 9; i++ {
		ns *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			ns += int64(c - '0')
		}
	}
	for i := 9; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return 0, false
		}
	}
	return sec*1e9 + ns, true
}
