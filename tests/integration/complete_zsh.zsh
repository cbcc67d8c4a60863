# Drive a real interactive zsh through a pseudo-terminal: compinit, source a completion
# script, type a line and TAB, then print the edit buffer as completion left it.
#   zsh -f complete_zsh.zsh SCRIPT LINE   ->  ...<BUFFER>the completed line</BUFFER>
# zle reads keys in order: ^X (show the buffer) runs only after TAB's completion returned.
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='' PROMPT='' RPROMPT=''"
zpty -w z "autoload -Uz compinit && compinit -u -D"
zpty -w z "source ${1:q}"
zpty -w z 'show-buffer() { print -r -- "<BUFFER>$BUFFER</BUFFER>"; BUFFER=""; zle accept-line }'
zpty -w z "zle -N show-buffer; bindkey '^I' complete-word; bindkey '^X' show-buffer"
zpty -w z "print -r -- READY''READY"
zpty -r z ignored '*READYREADY*'
zpty -w -n z "$2"$'\t\x18'
zpty -r z answer '*</BUFFER>*'
print -r -- "$answer"
zpty -d z
