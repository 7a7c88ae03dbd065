# bash completion for orch.  Installed by `make install` into
# $(PREFIX)/share/bash-completion/completions/orch.
_orch_services()
{
	local files=() i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-f | --file) files+=(-f "${COMP_WORDS[i + 1]}") ;;
		esac
	done
	orch "${files[@]}" config --services 2>/dev/null
}

_orch()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" sub="" i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-f | --file | -p | --project-name | --project-directory | --env-file | --profile | --ansi | --progress) ((i++)) ;;
		-*) ;;
		*) if [ -z "$cmd" ]; then cmd=${COMP_WORDS[i]}; elif [ -z "$sub" ]; then sub=${COMP_WORDS[i]}; fi ;;
		esac
	done
	case $prev in
	-f | --file | --env-file | --project-directory | -i | --input)
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--ansi) COMPREPLY=($(compgen -W "never always auto" -- "$cur")); return ;;
	--progress) COMPREPLY=($(compgen -W "plain tty" -- "$cur")); return ;;
	--publish) COMPREPLY=($(compgen -W "clusterip nodeport loadbalancer hostport" -- "$cur")); return ;;
	-o | --output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--format) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
	-s | --signal) COMPREPLY=($(compgen -W "SIGTERM SIGKILL SIGINT SIGHUP SIGUSR1 SIGUSR2 SIGQUIT" -- "$cur")); return ;;
	esac
	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-f --file -p --project-name --project-directory --env-file --profile --ansi --progress --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(orch help 2>/dev/null | awk '/^Commands:/ {on=1; next} on && NF {print $1}') help" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		local usage
		usage=$(orch "$cmd" ${sub:+"$sub"} --help 2>/dev/null)
		COMPREPLY=($(compgen -W "$(printf '%s\n' "$usage" | grep -o -- '--\?[a-zA-Z][a-zA-Z-]*' | sort -u)" -- "$cur"))
		return
	fi
	case $cmd in
	image | volume | network)
		if [ -z "$sub" ]; then
			COMPREPLY=($(compgen -W "$(orch "$cmd" --help 2>/dev/null | awk '/^  [a-z]/ {print $1}')" -- "$cur"))
		elif [ "$cmd" = image ]; then
			COMPREPLY=($(compgen -W "$(orch image ls 2>/dev/null | awk 'NR > 1 {print $1 ":" $2}')" -f -- "$cur"))
		elif [ "$cmd" = volume ]; then
			COMPREPLY=($(compgen -W "$(orch volume ls -q 2>/dev/null)" -- "$cur"))
		fi ;;
	kube)
		if [ -z "$sub" ]; then
			COMPREPLY=($(compgen -W "generate" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_orch_services)" -- "$cur"))
		fi ;;
	help) COMPREPLY=($(compgen -W "$(orch help 2>/dev/null | awk '/^Commands:/ {on=1; next} on && NF {print $1}')" -- "$cur")) ;;
	up | down | ps | logs | exec | cp | commit | export | volumes | attach | run | start | stop | restart | kill | pause | unpause | wait | scale | rm | top | port | stats | events | build | config | pull | push | watch)
		COMPREPLY=($(compgen -W "$(_orch_services)" -- "$cur")) ;;
	esac
}
complete -F _orch orch
