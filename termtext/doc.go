// Package termtext owns the one sanitiser for text printed to a terminal.
//
// Everything lanchat prints passes through Sanitize (or Inline for a value
// embedded in a line), whatever its origin, so that no string a peer sends
// can act on the terminal: clear the screen, set the window title, write
// the clipboard (OSC 52), move the cursor to forge a line, or reorder what
// is shown with bidi controls.
//
// What is rendered visibly instead of printed (Unsafe):
//
//   - C0 controls U+0000–U+001F (the text form keeps only '\n', which
//     lanchat's own multi-line output uses) and DEL U+007F, as \xHH
//     ("\x1b");
//   - C1 controls U+0080–U+009F, as <U+XXXX> ("<U+009B>");
//   - every format character, Unicode category Cf: the bidi controls
//     (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), zero-width
//     space and joiners (U+200B–U+200D), word joiner and invisible
//     operators (U+2060–U+2064), U+FEFF, the soft hyphen U+00AD, tag
//     characters (U+E0001, U+E0020–U+E007F) and the rest of Cf, as
//     <U+XXXX> ("<U+202E>"); emoji joined by U+200D therefore show as
//     their parts;
//   - the line and paragraph separators U+2028 and U+2029;
//   - the other default-ignorable code points (Unicode's
//     Other_Default_Ignorable_Code_Point: Hangul fillers U+115F, U+1160,
//     U+3164, U+FFA0, the combining grapheme joiner U+034F, U+2065,
//     U+FFF0–U+FFF8, ...);
//   - every byte that is not part of valid UTF-8, as \xHH ("\xff").
//
// A backslash is not escaped: a peer can write the four characters
// "\x1b", which look like a rendered escape and are as harmless.
//
// Lengths are capped per call: the result, including the mark that says
// how much was cut ("…(+N bytes)"), is never longer than the cap.
// Sanitising is idempotent, so text sanitised twice (a log line through
// two writers) reads the same.
//
// EscapeJSON applies the same rule to JSON output, as \uXXXX escapes that
// decode to the original string.
package termtext
