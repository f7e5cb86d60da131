//go:build race

package apiguard

const rateLimitRace = true
